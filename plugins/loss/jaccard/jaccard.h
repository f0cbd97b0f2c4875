// jaccard: soft Jaccard (IoU) loss on sigmoid probabilities (the SDK's soft_jaccard_loss).
// Reads ModelOutput::mask_logits and Batch::masks ([B, 1, H, W], 0/1).
#pragma once

#include "chestlab/loss.h"
#include "chestlab/mask_losses.h"

namespace chestlab::jaccard {

class JaccardLoss : public Loss {
 public:
  explicit JaccardLoss(SoftJaccardOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  SoftJaccardOptions options_;
};

}  // namespace chestlab::jaccard

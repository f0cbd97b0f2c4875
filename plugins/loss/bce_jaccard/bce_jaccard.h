// bce_jaccard: the RSNA Kaggle kernel's iou_bce_loss, a weighted sum of the SDK's binary
// cross-entropy and soft Jaccard. Reads ModelOutput::mask_logits and Batch::masks
// ([B, 1, H, W], 0/1).
#pragma once

#include "chestlab/loss.h"
#include "chestlab/mask_losses.h"

namespace chestlab::bce_jaccard {

struct BceJaccardOptions {
  double bce_weight = 0.5;
  double jaccard_weight = 0.5;
  double pos_weight = 1.0;
  SoftJaccardOptions jaccard;
};

// bce_weight * bce_with_logits(pos_weight) + jaccard_weight * soft_jaccard_loss.
class BceJaccardLoss : public Loss {
 public:
  explicit BceJaccardLoss(BceJaccardOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  BceJaccardOptions options_;
};

}  // namespace chestlab::bce_jaccard

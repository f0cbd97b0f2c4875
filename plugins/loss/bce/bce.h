// bce: binary cross-entropy on the mask logits (the SDK's bce_with_logits). Reads
// ModelOutput::mask_logits and Batch::masks ([B, 1, H, W], 0/1).
#pragma once

#include "chestlab/loss.h"

namespace chestlab::bce {

class BceLoss : public Loss {
 public:
  explicit BceLoss(double pos_weight) : pos_weight_(pos_weight) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  double pos_weight_;
};

}  // namespace chestlab::bce

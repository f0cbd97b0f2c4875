// dice: soft Dice loss for class-imbalanced segmentation. Reads ModelOutput::mask_logits and
// Batch::masks ([B, 1, H, W], values 0/1).
#pragma once

#include <torch/torch.h>

#include "chestlab/loss.h"
#include "chestlab/mask_pair.h"

namespace chestlab::dice {

struct DiceOptions {
  double smooth = 1.0;     // > 0: an empty prediction on an empty mask costs 0
  bool per_image = false;  // false: one Dice over all pixels of the batch
};

// With p = sigmoid(logits) and t the mask, summed over the batch (or per image, then averaged):
//   1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)
torch::Tensor dice_value(const MaskPair& pair, const DiceOptions& options);

class DiceLoss : public Loss {
 public:
  explicit DiceLoss(DiceOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  DiceOptions options_;
};

}  // namespace chestlab::dice

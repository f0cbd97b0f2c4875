// Mask losses for class-imbalanced segmentation: soft Dice and binary focal loss. Both read
// ModelOutput::mask_logits and Batch::masks ([B, 1, H, W], values 0/1).
#pragma once

#include <torch/torch.h>

#include "chestlab/loss.h"
#include "chestlab/mask_pair.h"

namespace chestlab::overlap_loss {

struct DiceOptions {
  double smooth = 1.0;     // > 0: an empty prediction on an empty mask costs 0
  bool per_image = false;  // false: one Dice over all pixels of the batch
};

// With p = sigmoid(logits) and t the mask, summed over the batch (or per image, then averaged):
//   1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)
torch::Tensor dice_value(const MaskPair& pair, const DiceOptions& options);

struct FocalOptions {
  double alpha = 0.25;  // weight of the positive class; the negative class gets 1 - alpha
  double gamma = 2.0;   // focusing exponent; 0 gives alpha-weighted cross-entropy
};

// Binary focal loss of RetinaNet (Lin et al. 2017, eq. 5), averaged over all pixels:
//   FL = -alpha_t * (1 - p_t)^gamma * log(p_t),
//   p_t = p, alpha_t = alpha for t = 1;  p_t = 1 - p, alpha_t = 1 - alpha for t = 0.
// Evaluated from log-sigmoids only, since 1 - sigmoid(x) = sigmoid(-x):
//   t = 1: -alpha       * exp(gamma * logsigmoid(-x)) * logsigmoid(x)
//   t = 0: -(1 - alpha) * exp(gamma * logsigmoid(x))  * logsigmoid(-x)
// so value and gradient stay finite for any logit and any gamma >= 0. A fractional target
// (from resampling a mask) weighs the two terms by t and 1 - t.
torch::Tensor focal_value(const MaskPair& pair, const FocalOptions& options);

class DiceLoss : public Loss {
 public:
  explicit DiceLoss(DiceOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  DiceOptions options_;
};

class FocalLoss : public Loss {
 public:
  explicit FocalLoss(FocalOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  FocalOptions options_;
};

}  // namespace chestlab::overlap_loss

// focal: binary focal loss on the mask, for class-imbalanced segmentation. Reads
// ModelOutput::mask_logits and Batch::masks ([B, 1, H, W], values 0/1).
#pragma once

#include <torch/torch.h>

#include "chestlab/loss.h"
#include "chestlab/mask_pair.h"

namespace chestlab::focal {

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

class FocalLoss : public Loss {
 public:
  explicit FocalLoss(FocalOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  FocalOptions options_;
};

}  // namespace chestlab::focal

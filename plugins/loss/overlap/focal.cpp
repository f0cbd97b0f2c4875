#include "overlap_losses.h"

namespace chestlab::overlap_loss {

torch::Tensor focal_value(const MaskPair& pair, const FocalOptions& options) {
  const auto log_p = torch::log_sigmoid(pair.logits);       // log p
  const auto log_not_p = torch::log_sigmoid(-pair.logits);  // log (1 - p)
  // (1 - p)^gamma as exp(gamma * log(1 - p)): pow() would have an infinite derivative at 0
  // for gamma < 1, reached once the sigmoid saturates.
  const auto positive = -options.alpha * torch::exp(options.gamma * log_not_p) * log_p;
  const auto negative = -(1.0 - options.alpha) * torch::exp(options.gamma * log_p) * log_not_p;
  const auto& t = pair.targets;
  return (t * positive + (1.0 - t) * negative).mean();
}

torch::Tensor FocalLoss::compute(const ModelOutput& output, const Batch& batch) {
  return focal_value(mask_pair("focal", output, batch), options_);
}

}  // namespace chestlab::overlap_loss

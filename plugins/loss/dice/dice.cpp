#include "dice.h"

namespace chestlab::dice {

torch::Tensor dice_value(const MaskPair& pair, const DiceOptions& options) {
  const auto probs = torch::sigmoid(pair.logits);
  // Rows are images (per_image) or one row for the whole batch.
  const auto flat_probs = options.per_image ? probs.flatten(1) : probs.flatten().unsqueeze(0);
  const auto flat_truth = options.per_image ? pair.targets.flatten(1) : pair.targets.flatten().unsqueeze(0);
  const auto intersection = (flat_probs * flat_truth).sum(1);
  const auto total = flat_probs.sum(1) + flat_truth.sum(1);
  const auto score = (2.0 * intersection + options.smooth) / (total + options.smooth);
  return (1.0 - score).mean();
}

torch::Tensor DiceLoss::compute(const ModelOutput& output, const Batch& batch) {
  return dice_value(mask_pair("dice", output, batch), options_);
}

}  // namespace chestlab::dice

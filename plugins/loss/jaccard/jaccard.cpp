#include "segmentation_losses.h"

namespace chestlab::seg_loss {

torch::Tensor jaccard_value(const MaskPair& pair, const JaccardOptions& options) {
  const auto probs = torch::sigmoid(pair.logits);
  // Sum over everything but the batch dimension, or over everything (the kernel's choice: one
  // IoU for the batch, so images without opacity weigh nothing on their own).
  const auto flat_probs = options.per_image ? probs.flatten(1) : probs.flatten().unsqueeze(0);
  const auto flat_truth = options.per_image ? pair.targets.flatten(1) : pair.targets.flatten().unsqueeze(0);
  const auto intersection = (flat_probs * flat_truth).sum(1);
  const auto union_ = flat_probs.sum(1) + flat_truth.sum(1) - intersection;
  const auto score = (intersection + options.smooth) / (union_ + options.smooth);
  return (1.0 - score).mean();
}

torch::Tensor JaccardLoss::compute(const ModelOutput& output, const Batch& batch) {
  return jaccard_value(mask_pair("jaccard", output, batch), options_);
}

}  // namespace chestlab::seg_loss

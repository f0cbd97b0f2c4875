#include "segmentation_losses.h"

namespace chestlab::seg_loss {

torch::Tensor bce_value(const MaskPair& pair, double pos_weight) {
  // The logits form (log-sum-exp inside) stays finite where sigmoid saturates to 0 or 1.
  namespace F = torch::nn::functional;
  auto options = F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kMean);
  if (pos_weight != 1.0) options.pos_weight(torch::full({1}, pos_weight, pair.logits.options()));
  return F::binary_cross_entropy_with_logits(pair.logits, pair.targets, options);
}

torch::Tensor BceLoss::compute(const ModelOutput& output, const Batch& batch) {
  return bce_value(mask_pair("bce", output, batch), pos_weight_);
}

}  // namespace chestlab::seg_loss

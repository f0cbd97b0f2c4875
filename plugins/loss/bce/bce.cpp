#include "bce.h"

#include "chestlab/mask_losses.h"

namespace chestlab::bce {

torch::Tensor BceLoss::compute(const ModelOutput& output, const Batch& batch) {
  return bce_with_logits(mask_pair("bce", output, batch), pos_weight_);
}

}  // namespace chestlab::bce

#include "segmentation_losses.h"

namespace chestlab::seg_loss {

torch::Tensor BceJaccardLoss::compute(const ModelOutput& output, const Batch& batch) {
  const auto pair = mask_pair("bce_jaccard", output, batch);
  return options_.bce_weight * bce_value(pair, options_.pos_weight) +
         options_.jaccard_weight * jaccard_value(pair, options_.jaccard);
}

}  // namespace chestlab::seg_loss

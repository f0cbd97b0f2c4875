#include "bce_jaccard.h"

namespace chestlab::bce_jaccard {

torch::Tensor BceJaccardLoss::compute(const ModelOutput& output, const Batch& batch) {
  const auto pair = mask_pair("bce_jaccard", output, batch);
  return options_.bce_weight * bce_with_logits(pair, options_.pos_weight) +
         options_.jaccard_weight * soft_jaccard_loss(pair, options_.jaccard);
}

}  // namespace chestlab::bce_jaccard

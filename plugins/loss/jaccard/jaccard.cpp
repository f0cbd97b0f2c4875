#include "jaccard.h"

namespace chestlab::jaccard {

torch::Tensor JaccardLoss::compute(const ModelOutput& output, const Batch& batch) {
  return soft_jaccard_loss(mask_pair("jaccard", output, batch), options_);
}

}  // namespace chestlab::jaccard

#include "dice.h"

#include <limits>

#include "chestlab/mask_pair.h"

namespace chestlab::dice_metric {

void Dice::reset() {
  dice_sum_ = 0.0;
  images_ = 0;
}

void Dice::update(const Prediction& prediction, const Batch& batch) {
  const auto masks = binary_masks("dice", prediction, batch, threshold_);
  const auto intersection = masks.predicted.logical_and(masks.truth).sum(1).to(torch::kFloat64);
  const auto sizes = (masks.predicted.sum(1) + masks.truth.sum(1)).to(torch::kFloat64);
  // Both empty: the image was answered perfectly, but 0/0 has no value; empty_score decides.
  const auto dice = torch::where(sizes.gt(0), 2.0 * intersection / sizes.clamp_min(1),
                                 torch::full_like(sizes, empty_score_));
  dice_sum_ += dice.sum().item<double>();
  images_ += dice.size(0);
}

double Dice::compute() const {
  if (images_ == 0) return std::numeric_limits<double>::quiet_NaN();
  return dice_sum_ / static_cast<double>(images_);
}

}  // namespace chestlab::dice_metric

#include <limits>

#include "chestlab/mask_pair.h"
#include "pixel_accuracy.h"

namespace chestlab::pixel_accuracy {

void PixelAccuracy::reset() {
  correct_ = 0;
  total_ = 0;
}

void PixelAccuracy::update(const Prediction& prediction, const Batch& batch) {
  const auto masks = binary_masks("pixel_accuracy", prediction, batch, threshold_);
  correct_ += masks.predicted.eq(masks.truth).sum().item<std::int64_t>();
  total_ += masks.truth.numel();
}

double PixelAccuracy::compute() const {
  if (total_ == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(correct_) / static_cast<double>(total_);
}

}  // namespace chestlab::pixel_accuracy

#include <limits>

#include "chestlab/mask_pair.h"
#include "mean_iou.h"

namespace chestlab::mean_iou {

void MeanIou::reset() {
  iou_sum_ = 0.0;
  images_ = 0;
}

void MeanIou::update(const Prediction& prediction, const Batch& batch) {
  const auto masks = binary_masks("mean_iou", prediction, batch, threshold_);
  const auto intersection = masks.predicted.logical_and(masks.truth).sum(1).to(torch::kFloat64);
  const auto union_ = masks.predicted.logical_or(masks.truth).sum(1).to(torch::kFloat64);
  // Both empty: the image was answered perfectly, but 0/0 has no value; empty_score decides.
  const auto iou = torch::where(union_.gt(0), intersection / union_.clamp_min(1),
                                torch::full_like(union_, empty_score_));
  iou_sum_ += iou.sum().item<double>();
  images_ += iou.size(0);
}

double MeanIou::compute() const {
  if (images_ == 0) return std::numeric_limits<double>::quiet_NaN();
  return iou_sum_ / static_cast<double>(images_);
}

}  // namespace chestlab::mean_iou

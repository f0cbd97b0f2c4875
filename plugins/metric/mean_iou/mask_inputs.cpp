#include <fmt/format.h>
#include <fmt/ranges.h>

#include "chestlab/errors.h"
#include "segmentation_metrics.h"

namespace chestlab::seg_metric {

BinaryMasks binarise(const char* metric_name, const Prediction& prediction, const Batch& batch,
                     double threshold) {
  if (!prediction.mask_prob.defined()) {
    throw ConfigError(fmt::format(
        "metric '{}' needs a mask model (output = \"mask\"), but the prediction has no mask", metric_name));
  }
  if (!batch.masks.defined()) {
    throw ConfigError(fmt::format(
        "metric '{}' needs ground-truth masks, but the dataset's batch has none", metric_name));
  }
  if (prediction.mask_prob.sizes() != batch.masks.sizes()) {
    throw std::invalid_argument(fmt::format(
        "metric '{}': predicted mask of shape [{}] but ground truth of shape [{}]", metric_name,
        fmt::join(prediction.mask_prob.sizes().vec(), ", "), fmt::join(batch.masks.sizes().vec(), ", ")));
  }
  const auto images = prediction.mask_prob.size(0);
  return {prediction.mask_prob.reshape({images, -1}).ge(threshold),
          batch.masks.reshape({images, -1}).ge(0.5)};
}

}  // namespace chestlab::seg_metric

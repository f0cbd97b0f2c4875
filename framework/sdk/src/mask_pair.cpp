#include <fmt/format.h>
#include <torch/torch.h>
#include <fmt/ranges.h>

#include "chestlab/errors.h"
#include "chestlab/mask_pair.h"

namespace chestlab {

MaskPair mask_pair(const char* loss_name, const ModelOutput& output, const Batch& batch) {
  if (!output.mask_logits.defined()) {
    throw ConfigError(fmt::format(
        "loss '{}' needs a mask model (output = \"mask\"), but the model produced no mask logits",
        loss_name));
  }
  if (!batch.masks.defined()) {
    throw ConfigError(fmt::format(
        "loss '{}' needs ground-truth masks, but the dataset's batch has none: use a dataset "
        "that provides masks or a box loss",
        loss_name));
  }
  if (output.mask_logits.sizes() != batch.masks.sizes()) {
    throw std::invalid_argument(fmt::format("loss '{}': mask logits of shape [{}] but masks of shape [{}]",
                                            loss_name, fmt::join(output.mask_logits.sizes().vec(), ", "),
                                            fmt::join(batch.masks.sizes().vec(), ", ")));
  }
  return {output.mask_logits, batch.masks.to(output.mask_logits.dtype())};
}

BinaryMasks binary_masks(const char* metric_name, const Prediction& prediction, const Batch& batch,
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

}  // namespace chestlab

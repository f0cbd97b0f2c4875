#include "chestlab/mask_losses.h"

#include <torch/torch.h>

namespace chestlab {

torch::Tensor bce_with_logits(const MaskPair& pair, double pos_weight) {
  namespace F = torch::nn::functional;
  auto options = F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kMean);
  if (pos_weight != 1.0) options.pos_weight(torch::full({1}, pos_weight, pair.logits.options()));
  return F::binary_cross_entropy_with_logits(pair.logits, pair.targets, options);
}

ParamSpec pos_weight_param() {
  return param_float("pos_weight", 1.0, "weight of the positive (mask) pixels in the cross-entropy; 1 = unweighted")
      .above(0.0);
}

torch::Tensor soft_jaccard_loss(const MaskPair& pair, const SoftJaccardOptions& options) {
  const auto probs = torch::sigmoid(pair.logits);
  // Sum over everything but the batch dimension, or over everything (the kernel's choice: one
  // IoU for the batch, so images without opacity weigh nothing on their own).
  const auto flat_probs = options.per_image ? probs.flatten(1) : probs.flatten().unsqueeze(0);
  const auto flat_truth = options.per_image ? pair.targets.flatten(1) : pair.targets.flatten().unsqueeze(0);
  const auto intersection = (flat_probs * flat_truth).sum(1);
  const auto union_ = flat_probs.sum(1) + flat_truth.sum(1) - intersection;
  const auto score = (intersection + options.smooth) / (union_ + options.smooth);
  return (1.0 - score).mean();
}

Schema soft_jaccard_params() {
  return {param_float("smooth", 1.0,
                      "added to intersection and union, so that an empty prediction on an empty "
                      "mask costs 0 and the gradient stays finite")
              .above(0.0),
          param_bool("per_image", false,
                     "false: one IoU over all pixels of the batch (the kernel's way); true: the "
                     "mean of per-image losses")};
}

SoftJaccardOptions soft_jaccard_options(const Params& params) {
  SoftJaccardOptions options;
  options.smooth = params.real("smooth");
  options.per_image = params.boolean("per_image");
  return options;
}

}  // namespace chestlab

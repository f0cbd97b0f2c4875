#include "resnet_seg.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "chestlab/errors.h"

namespace chestlab::resnet_seg {

ResnetSeg::ResnetSeg(const ResnetSegOptions& options) : options_(options) {
  stem_ = register_module(
      "stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels, options.channels, 3)
                                    .padding(1)
                                    .bias(false)));
  stages_ = register_module("stages", torch::nn::ModuleList());
  std::int64_t width = options.channels;
  for (std::int64_t d = 0; d < options.depth; ++d) {
    stages_->push_back(DownsampleStage(width, 2 * width, options.blocks, options.bn_momentum));
    width *= 2;
  }
  // The schema allows only these two heads, and the transposed one only from depth 2.
  if (options.head == "transposed") {
    transposed_head_ = register_module("head", TransposedHead(width, options.bn_momentum));
  } else {
    head_ = register_module("head", SegmentationHead(width, options.bn_momentum));
  }
}

void ResnetSeg::check_input(const torch::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != options_.in_channels) {
    throw ConfigError(fmt::format(
        "resnet_seg: expected images of shape [batch, {}, height, width], got {}",
        options_.in_channels, fmt::join(images.sizes().vec(), "x")));
  }
  const std::int64_t factor = std::int64_t{1} << options_.depth;
  const std::int64_t height = images.size(2);
  const std::int64_t width = images.size(3);
  if (height % factor != 0 || width % factor != 0) {
    throw ConfigError(fmt::format(
        "resnet_seg: input size {}x{} (height x width) is not divisible by 2^depth = {} "
        "(depth = {}): set the image size to a multiple of {} or lower the model's depth",
        height, width, factor, options_.depth, factor));
  }
}

ModelOutput ResnetSeg::forward(const torch::Tensor& images) {
  check_input(images);
  auto x = stem_->forward(images);
  for (const auto& stage : *stages_) x = stage->as<DownsampleStageImpl>()->forward(x);
  x = head_ ? head_->forward(x) : transposed_head_->forward(x);
  // Resizing to the exact input size equals the 2^depth (kernel head) or 2^(depth-2)
  // (transposed head) upsampling, because the input is a multiple of 2^depth (checked above).
  namespace F = torch::nn::functional;
  ModelOutput out;
  out.mask_logits = F::interpolate(
      x, F::InterpolateFuncOptions()
             .size(std::vector<std::int64_t>{images.size(2), images.size(3)})
             .mode(torch::kBilinear)
             .align_corners(false));
  return out;
}

}  // namespace chestlab::resnet_seg

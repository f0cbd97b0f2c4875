// The building blocks of unet: conv units, level blocks, down- and upsampling layers.
#include <cmath>

#include "unet.h"

namespace chestlab::unet {

namespace {

void push_activation(torch::nn::Sequential& sequence, Activation activation) {
  switch (activation) {
    case Activation::Relu:
      sequence->push_back("act", torch::nn::ReLU());
      return;
    case Activation::LeakyRelu:
      sequence->push_back("act", torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.01)));
      return;
    case Activation::Elu:
      sequence->push_back("act", torch::nn::ELU(torch::nn::ELUOptions().alpha(1.0)));
      return;
  }
}

// BatchNorm and activation after a convolution already pushed as "conv".
void push_norm_and_activation(torch::nn::Sequential& sequence, const UnetOptions& options,
                              std::int64_t channels) {
  if (options.batch_norm) sequence->push_back("bn", torch::nn::BatchNorm2d(channels));
  push_activation(sequence, options.activation);
}

}  // namespace

std::int64_t level_channels(const UnetOptions& options, std::int64_t level) {
  const double width = static_cast<double>(options.channels) * std::pow(options.growth, static_cast<double>(level));
  return std::max<std::int64_t>(1, std::llround(width));
}

torch::nn::Sequential conv_unit(const UnetOptions& options, std::int64_t in, std::int64_t out,
                                std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  torch::nn::Sequential unit;
  unit->push_back("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                .stride(stride)
                                                .padding(padding)
                                                .bias(!options.batch_norm)));
  push_norm_and_activation(unit, options, out);
  return unit;
}

LevelBlockImpl::LevelBlockImpl(const UnetOptions& options, std::int64_t in_channels, std::int64_t out_channels)
    : residual_(options.residual),
      output_channels_(options.residual ? in_channels + out_channels : out_channels) {
  auto list = register_module("convs", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < options.convs_per_level; ++i) {
    units_.push_back(conv_unit(options, i == 0 ? in_channels : out_channels, out_channels, 3, 1, 1));
    list->push_back(units_.back());
  }
}

torch::Tensor LevelBlockImpl::forward(const torch::Tensor& x) {
  auto y = x;
  for (auto& unit : units_) y = unit->forward(y);
  return residual_ ? torch::cat({x, y}, /*dim=*/1) : y;
}

torch::nn::Sequential downsample_layer(const UnetOptions& options, std::int64_t channels) {
  if (options.downsample == Downsample::Strided) return conv_unit(options, channels, channels, 3, 2, 1);
  torch::nn::Sequential layer;
  layer->push_back("pool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
  return layer;
}

torch::nn::Sequential upsample_layer(const UnetOptions& options, std::int64_t in, std::int64_t out) {
  torch::nn::Sequential layer;
  if (options.upsample == Upsample::Transposed) {
    layer->push_back("conv", torch::nn::ConvTranspose2d(
                                 torch::nn::ConvTranspose2dOptions(in, out, 2).stride(2).bias(!options.batch_norm)));
  } else {
    layer->push_back("upsample", torch::nn::Upsample(torch::nn::UpsampleOptions()
                                                         .scale_factor(std::vector<double>{2.0, 2.0})
                                                         .mode(torch::kNearest)));
    // Keras' padding="same" for an even kernel pads the extra row and column after the
    // input (bottom/right): total padding k - 1 = 1, split as 0 before and 1 after.
    layer->push_back("pad", torch::nn::ZeroPad2d(torch::nn::ZeroPad2dOptions({0, 1, 0, 1})));
    layer->push_back("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 2).bias(!options.batch_norm)));
  }
  push_norm_and_activation(layer, options, out);
  return layer;
}

}  // namespace chestlab::unet

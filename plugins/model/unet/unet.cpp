#include "unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "chestlab/errors.h"

namespace chestlab::unet {

UnetOptions notebook_simple_options(std::int64_t in_channels) {
  UnetOptions o;
  o.in_channels = in_channels;
  o.depth = 2;
  o.channels = 64;
  o.growth = 2.0;
  o.activation = Activation::Relu;
  o.dropout = 0.5;
  o.batch_norm = false;
  o.downsample = Downsample::MaxPool;
  o.upsample = Upsample::UpsampleConv;
  o.residual = false;
  o.convs_per_level = 1;
  o.init = Init::GlorotUniform;
  return o;
}

Unet::Unet(const UnetOptions& options) : options_(options) {
  auto encoder = register_module("encoder", torch::nn::ModuleList());
  auto down = register_module("down", torch::nn::ModuleList());
  auto up = register_module("up", torch::nn::ModuleList());
  auto decoder = register_module("decoder", torch::nn::ModuleList());

  // Widths are tracked rather than derived, because residual blocks widen their input.
  std::int64_t width = options.in_channels;
  std::vector<std::int64_t> skip_widths;
  for (std::int64_t level = 0; level <= options.depth; ++level) {
    encoder_blocks_.push_back(LevelBlock(options, width, level_channels(options, level)));
    encoder->push_back(encoder_blocks_.back());
    width = encoder_blocks_.back()->output_channels();
    if (level == options.depth) break;  // the bottleneck has no skip and no downsampling
    skip_widths.push_back(width);
    down_layers_.push_back(downsample_layer(options, width));
    down->push_back(down_layers_.back());
  }
  for (std::int64_t level = options.depth - 1; level >= 0; --level) {
    const std::int64_t out = level_channels(options, level);
    up_layers_.push_back(upsample_layer(options, width, out));
    up->push_back(up_layers_.back());
    decoder_blocks_.push_back(LevelBlock(options, skip_widths.at(static_cast<std::size_t>(level)) + out, out));
    decoder->push_back(decoder_blocks_.back());
    width = decoder_blocks_.back()->output_channels();
  }
  if (options.dropout > 0.0) dropout_ = register_module("dropout", torch::nn::Dropout(options.dropout));
  head_ = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, 1, 1)));
  apply_init();
}

void Unet::apply_init() {
  if (options_.init != Init::GlorotUniform) return;
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    torch::Tensor weight, bias;
    if (auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      weight = conv->weight;
      bias = conv->bias;
    } else if (auto* transposed = module->as<torch::nn::ConvTranspose2dImpl>()) {
      weight = transposed->weight;
      bias = transposed->bias;
    } else {
      continue;
    }
    // Keras' glorot_uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)), fans including the
    // kernel area, which is also what xavier_uniform_ computes.
    torch::nn::init::xavier_uniform_(weight);
    if (bias.defined()) torch::nn::init::zeros_(bias);
  }
}

void Unet::check_input(const torch::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != options_.in_channels) {
    throw ConfigError(fmt::format("unet: expected images of shape [batch, {}, height, width], got [{}]",
                                  options_.in_channels, fmt::join(images.sizes().vec(), ", ")));
  }
  const std::int64_t factor = std::int64_t{1} << options_.depth;
  const std::int64_t height = images.size(2);
  const std::int64_t width = images.size(3);
  if (height % factor != 0 || width % factor != 0) {
    throw ConfigError(fmt::format(
        "unet: input size {}x{} (height x width) is not divisible by 2^depth = {} (depth = {}): set the "
        "image size to a multiple of {} or lower the model's depth",
        height, width, factor, options_.depth, factor));
  }
}

ModelOutput Unet::forward(const torch::Tensor& images) {
  check_input(images);
  std::vector<torch::Tensor> skips;
  auto x = images;
  for (std::size_t level = 0; level < down_layers_.size(); ++level) {
    x = encoder_blocks_[level]->forward(x);
    skips.push_back(x);
    x = down_layers_[level]->forward(x);
  }
  x = encoder_blocks_.back()->forward(x);
  for (std::size_t i = 0; i < up_layers_.size(); ++i) {
    const auto& skip = skips[skips.size() - 1 - i];
    x = decoder_blocks_[i]->forward(torch::cat({skip, up_layers_[i]->forward(x)}, /*dim=*/1));
  }
  if (dropout_) x = dropout_->forward(x);
  ModelOutput out;
  out.mask_logits = head_->forward(x);
  return out;
}

}  // namespace chestlab::unet

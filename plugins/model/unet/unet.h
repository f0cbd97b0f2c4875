// unet: a configurable U-Net (Ronneberger et al. 2015) with the knobs of a capstone report's
// residual U-Net, plus the exact Keras net of a course notebook as the preset "notebook_simple".
//
// Widths. Level l (0 = full resolution, `depth` = bottleneck) has
//   c_l = max(1, round(channels * growth^l))
// output channels per convolution.
//
// Conv unit: conv (bias only without BatchNorm, where BN's shift makes it redundant),
// BatchNorm (PyTorch defaults: momentum 0.1, eps 1e-5) when batch_norm, activation
// (relu; leaky_relu with PyTorch's slope 0.01; elu with alpha 1).
//
// Level block: convs_per_level 3x3 conv units ("same" padding), the first maps the block's
// input width to c_l, the others keep c_l. With residual = true the block returns
// concat(input, convs(input)) along the channels (the report's "residual" block: the input
// is carried past the convolutions by concatenation, not by addition), so its output has
// input width + c_l channels; the widths of everything downstream follow.
//
// Net, for depth D:
//   encoder  l = 0 .. D-1: block(l) -> kept as skip(l) -> downsample
//            downsample = "maxpool": 2x2 max-pool; "strided": conv unit 3x3, stride 2,
//            padding 1, same width in and out
//   bottleneck:            block(D)
//   decoder  l = D-1 .. 0: up(l) -> concat(skip(l), up) -> block(l)
//            up = "upsample_conv": nearest 2x upsampling, zero pad right/bottom by 1, conv
//                 unit 2x2 to c_l (Keras' UpSampling2D + Conv2D(2, padding="same"));
//                 "transposed": 2x2 transposed convolution, stride 2, to c_l, then BN/act
//                 like every conv unit
//   head:    dropout (only when dropout > 0), 1x1 conv to one logit channel (with bias).
// The output is the logit map; the sigmoid is applied by Model::predict and inside the losses.
//
// Preset "notebook_simple", layer by layer (input 1 channel, padding "same" throughout):
//   conv3x3(1->64)+relu, maxpool2, conv3x3(64->128)+relu, maxpool2, conv3x3(128->256)+relu,
//   up2 nearest, pad(0,1,0,1), conv2x2(256->128)+relu, concat skip(128) -> conv3x3(256->128)+relu,
//   up2 nearest, pad(0,1,0,1), conv2x2(128->64)+relu,  concat skip(64)  -> conv3x3(128->64)+relu,
//   dropout 0.5, conv1x1(64->1)
// i.e. depth 2, channels 64, growth 2, convs_per_level 1, no BatchNorm, relu, maxpool,
// upsample_conv, no residual, and Keras' initialisation (Glorot-uniform kernels, zero biases).
// Parameters: 640 + 73,856 + 295,168 + 131,200 + 295,040 + 32,832 + 73,792 + 65 = 902,593.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "chestlab/model.h"

namespace chestlab::unet {

enum class Activation { Relu, LeakyRelu, Elu };
enum class Downsample { MaxPool, Strided };
enum class Upsample { UpsampleConv, Transposed };
// PyTorch: the modules' own defaults (Kaiming-uniform); GlorotUniform: Keras' defaults
// (Xavier-uniform weights, zero biases).
enum class Init { PyTorch, GlorotUniform };

struct UnetOptions {
  std::int64_t in_channels = 1;
  std::int64_t depth = 4;          // number of downsamplings; H and W must be multiples of 2^depth
  std::int64_t channels = 32;      // c_0
  double growth = 2.0;             // c_l = round(channels * growth^l)
  Activation activation = Activation::Relu;
  double dropout = 0.0;            // before the 1x1 head
  bool batch_norm = true;
  Downsample downsample = Downsample::MaxPool;
  Upsample upsample = Upsample::UpsampleConv;
  bool residual = false;           // concat(input, convs(input)) blocks
  std::int64_t convs_per_level = 2;
  Init init = Init::PyTorch;
};

// The course notebook's Keras net (see the file comment).
UnetOptions notebook_simple_options(std::int64_t in_channels);

// c_l of the file comment.
std::int64_t level_channels(const UnetOptions& options, std::int64_t level);

// A conv unit: conv ("conv"), BatchNorm ("bn") when batch_norm, activation ("act").
torch::nn::Sequential conv_unit(const UnetOptions& options, std::int64_t in, std::int64_t out,
                                std::int64_t kernel, std::int64_t stride, std::int64_t padding);

// convs_per_level conv units; with residual, concat(input, output).
class LevelBlockImpl : public torch::nn::Module {
 public:
  LevelBlockImpl(const UnetOptions& options, std::int64_t in_channels, std::int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);
  std::int64_t output_channels() const { return output_channels_; }

 private:
  std::vector<torch::nn::Sequential> units_;  // registered as "convs.<i>"
  bool residual_;
  std::int64_t output_channels_;
};
TORCH_MODULE(LevelBlock);

// Halves the resolution; keeps the width.
torch::nn::Sequential downsample_layer(const UnetOptions& options, std::int64_t channels);
// Doubles the resolution; maps in -> out channels.
torch::nn::Sequential upsample_layer(const UnetOptions& options, std::int64_t in, std::int64_t out);

class Unet : public chestlab::Model {
 public:
  explicit Unet(const UnetOptions& options);

  // images: float [B, in_channels, H, W] with H and W multiples of 2^depth.
  // Returns mask_logits [B, 1, H, W]. Throws ConfigError for any other input shape.
  ModelOutput forward(const torch::Tensor& images) override;
  const UnetOptions& options() const { return options_; }

 private:
  void check_input(const torch::Tensor& images) const;
  void apply_init();

  UnetOptions options_;
  // Typed handles; the same modules are registered through the ModuleLists, which name the
  // parameters "encoder.<l>...", "down.<l>...", "up.<i>...", "decoder.<i>..." (i = 0 is the
  // deepest decoder level, so the listing reads in forward order).
  std::vector<LevelBlock> encoder_blocks_;
  std::vector<torch::nn::Sequential> down_layers_;
  std::vector<torch::nn::Sequential> up_layers_;
  std::vector<LevelBlock> decoder_blocks_;
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Conv2d head_{nullptr};
};

}  // namespace chestlab::unet

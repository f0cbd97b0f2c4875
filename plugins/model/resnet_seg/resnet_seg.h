// resnet_seg: the residual segmentation network of the public RSNA pneumonia Kaggle kernel
// ("CNN Segmentation + connected components"), ported from Keras to LibTorch.
//
//   stem:   3x3 conv (in -> channels, no bias)
//   stages: depth x [BatchNorm, ReLU, 1x1 conv doubling the channels (no bias), 2x2 max-pool,
//                    blocks x residual block]
//   head = "kernel" (the kernel's): BatchNorm, ReLU, 1x1 conv to one channel (with bias),
//           bilinear upsampling by 2^depth to the input size.
//   head = "transposed" (a capstone report's): BatchNorm, ReLU, 1x1 conv to 256 channels,
//           BatchNorm, ReLU, 8x8 transposed conv with stride 4 to 128 channels (4x larger),
//           BatchNorm, ReLU, 1x1 conv to one channel, bilinear upsampling by 2^(depth-2).
//
// The output is a logit map; sigmoid is applied by Model::predict and inside the losses, so
// that BCE can use the numerically stable logits form.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "chestlab/model.h"

namespace chestlab::resnet_seg {

struct ResnetSegOptions {
  std::int64_t in_channels = 1;
  std::int64_t channels = 32;  // width of the stem; every stage doubles it
  std::int64_t depth = 4;      // number of downsampling stages
  std::int64_t blocks = 2;     // residual blocks per stage
  // PyTorch convention: running = (1 - momentum) * running + momentum * batch.
  // The kernel's Keras momentum 0.9 is PyTorch's 0.1.
  double bn_momentum = 0.1;
  std::string head = "kernel";  // kernel | transposed (needs depth >= 2)
};

// BatchNorm, ReLU, 3x3 conv, BatchNorm, ReLU, 3x3 conv, plus the identity.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(std::int64_t channels, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn2_{nullptr};
  torch::nn::Conv2d conv2_{nullptr};
};
TORCH_MODULE(ResidualBlock);

// BatchNorm, ReLU, 1x1 conv (in -> out), 2x2 max-pool, then the stage's residual blocks.
class DownsampleStageImpl : public torch::nn::Module {
 public:
  DownsampleStageImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t blocks,
                      double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn_{nullptr};
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(DownsampleStage);

// BatchNorm, ReLU, 1x1 conv to a single logit channel (at the lowest resolution).
class SegmentationHeadImpl : public torch::nn::Module {
 public:
  SegmentationHeadImpl(std::int64_t in_channels, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn_{nullptr};
  torch::nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(SegmentationHead);

// BN, ReLU, 1x1 conv to 256; BN, ReLU, transposed 8x8 conv stride 4 to 128 (exactly 4x the
// size, Keras' padding='same'); BN, ReLU, 1x1 conv to one logit channel.
class TransposedHeadImpl : public torch::nn::Module {
 public:
  TransposedHeadImpl(std::int64_t in_channels, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn2_{nullptr};
  torch::nn::ConvTranspose2d up_{nullptr};
  torch::nn::BatchNorm2d bn3_{nullptr};
  torch::nn::Conv2d conv2_{nullptr};
};
TORCH_MODULE(TransposedHead);

class ResnetSeg : public chestlab::Model {
 public:
  explicit ResnetSeg(const ResnetSegOptions& options);

  // images: float [B, in_channels, H, W] with H and W multiples of 2^depth.
  // Returns mask_logits [B, 1, H, W]. Throws ConfigError for any other input shape.
  ModelOutput forward(const torch::Tensor& images) override;

 private:
  void check_input(const torch::Tensor& images) const;

  ResnetSegOptions options_;
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::ModuleList stages_{nullptr};
  SegmentationHead head_{nullptr};             // head = "kernel"
  TransposedHead transposed_head_{nullptr};    // head = "transposed" (registered as "head" too)
};

}  // namespace chestlab::resnet_seg

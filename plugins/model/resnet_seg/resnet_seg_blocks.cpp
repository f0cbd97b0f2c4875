// The building blocks of resnet_seg. The kernel used pre-activation ordering (BN, ReLU, conv)
// everywhere and bias-free convolutions except the final 1x1 logit layer; both are kept so
// that parameter counts match the original network.
#include "resnet_seg.h"

namespace chestlab::resnet_seg {

namespace {

torch::nn::BatchNorm2d batch_norm(std::int64_t channels, double momentum) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).momentum(momentum));
}

torch::nn::Conv2d conv_no_bias(std::int64_t in, std::int64_t out, std::int64_t kernel) {
  // "same" padding for odd kernels, as Keras' padding='same'.
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(false));
}

}  // namespace

ResidualBlockImpl::ResidualBlockImpl(std::int64_t channels, double bn_momentum)
    : bn1_(register_module("bn1", batch_norm(channels, bn_momentum))),
      conv1_(register_module("conv1", conv_no_bias(channels, channels, 3))),
      bn2_(register_module("bn2", batch_norm(channels, bn_momentum))),
      conv2_(register_module("conv2", conv_no_bias(channels, channels, 3))) {}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  auto y = conv1_->forward(torch::relu(bn1_->forward(x)));
  y = conv2_->forward(torch::relu(bn2_->forward(y)));
  return y + x;
}

DownsampleStageImpl::DownsampleStageImpl(std::int64_t in_channels, std::int64_t out_channels,
                                         std::int64_t blocks, double bn_momentum)
    : bn_(register_module("bn", batch_norm(in_channels, bn_momentum))),
      conv_(register_module("conv", conv_no_bias(in_channels, out_channels, 1))),
      blocks_(register_module("blocks", torch::nn::ModuleList())) {
  for (std::int64_t b = 0; b < blocks; ++b) blocks_->push_back(ResidualBlock(out_channels, bn_momentum));
}

torch::Tensor DownsampleStageImpl::forward(const torch::Tensor& x) {
  auto y = conv_->forward(torch::relu(bn_->forward(x)));
  y = torch::max_pool2d(y, /*kernel_size=*/{2, 2});
  for (const auto& block : *blocks_) y = block->as<ResidualBlockImpl>()->forward(y);
  return y;
}

SegmentationHeadImpl::SegmentationHeadImpl(std::int64_t in_channels, double bn_momentum)
    : bn_(register_module("bn", batch_norm(in_channels, bn_momentum))),
      conv_(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, 1, 1)))) {}

torch::Tensor SegmentationHeadImpl::forward(const torch::Tensor& x) {
  return conv_->forward(torch::relu(bn_->forward(x)));
}

TransposedHeadImpl::TransposedHeadImpl(std::int64_t in_channels, double bn_momentum)
    : bn1_(register_module("bn1", batch_norm(in_channels, bn_momentum))),
      conv1_(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, 256, 1)))),
      bn2_(register_module("bn2", batch_norm(256, bn_momentum))),
      // (in - 1) * 4 - 2 * 2 + 8 = 4 * in: exactly four times larger.
      up_(register_module("up", torch::nn::ConvTranspose2d(
                                    torch::nn::ConvTranspose2dOptions(256, 128, 8).stride(4).padding(2)))),
      bn3_(register_module("bn3", batch_norm(128, bn_momentum))),
      conv2_(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(128, 1, 1)))) {}

torch::Tensor TransposedHeadImpl::forward(const torch::Tensor& x) {
  auto y = conv1_->forward(torch::relu(bn1_->forward(x)));
  y = up_->forward(torch::relu(bn2_->forward(y)));
  return conv2_->forward(torch::relu(bn3_->forward(y)));
}

}  // namespace chestlab::resnet_seg

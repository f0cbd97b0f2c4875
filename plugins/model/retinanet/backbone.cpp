// The ResNet backbone and the feature pyramid of retinanet.
#include <fmt/format.h>

#include "chestlab/errors.h"
#include "retinanet.h"

namespace chestlab::retinanet {

namespace {

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1,
                       bool bias = false) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(bias));
}

torch::nn::BatchNorm2d bn(std::int64_t channels) { return torch::nn::BatchNorm2d(channels); }

// torchvision's ResNet initialisation: He normal (fan-out) convolutions, BN weight 1 bias 0.
void init_resnet(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) {
      torch::nn::init::ones_(b->weight);
      torch::nn::init::zeros_(b->bias);
    }
  }
}

}  // namespace

ResBlockImpl::ResBlockImpl(std::int64_t in_channels, std::int64_t planes, std::int64_t stride, bool bottleneck)
    : out_channels_(bottleneck ? planes * 4 : planes) {
  torch::nn::Sequential body;
  if (bottleneck) {
    body->push_back(conv(in_channels, planes, 1));
    body->push_back(bn(planes));
    body->push_back(torch::nn::ReLU());
    body->push_back(conv(planes, planes, 3, stride));
    body->push_back(bn(planes));
    body->push_back(torch::nn::ReLU());
    body->push_back(conv(planes, out_channels_, 1));
    body->push_back(bn(out_channels_));
  } else {
    body->push_back(conv(in_channels, planes, 3, stride));
    body->push_back(bn(planes));
    body->push_back(torch::nn::ReLU());
    body->push_back(conv(planes, planes, 3));
    body->push_back(bn(planes));
  }
  body_ = register_module("body", body);
  torch::nn::Sequential shortcut;
  if (stride != 1 || in_channels != out_channels_) {
    shortcut->push_back(conv(in_channels, out_channels_, 1, stride));
    shortcut->push_back(bn(out_channels_));
  }
  shortcut_ = register_module("shortcut", shortcut);
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x) {
  const auto identity = shortcut_->is_empty() ? x : shortcut_->forward(x);
  return torch::relu(body_->forward(x) + identity);
}

ResNetBackboneImpl::ResNetBackboneImpl(std::int64_t in_channels, std::int64_t depth, std::int64_t width) {
  std::array<std::int64_t, 4> blocks{};
  bool bottleneck = false;
  if (depth == 18) {
    blocks = {2, 2, 2, 2};
  } else if (depth == 34) {
    blocks = {3, 4, 6, 3};
  } else if (depth == 50) {
    blocks = {3, 4, 6, 3};
    bottleneck = true;
  } else {
    throw std::logic_error(fmt::format("retinanet: depth {} passed the schema's check (18, 34 or 50)", depth));
  }
  stem_ = register_module(
      "stem", torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, width, 7)
                                                          .stride(2)
                                                          .padding(3)
                                                          .bias(false)),
                                    bn(width), torch::nn::ReLU(),
                                    torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1))));
  std::int64_t channels = width;
  for (std::size_t s = 0; s < 4; ++s) {
    const std::int64_t planes = width << s;
    torch::nn::Sequential stage;
    for (std::int64_t b = 0; b < blocks[s]; ++b) {
      ResBlock block(channels, planes, b == 0 && s > 0 ? 2 : 1, bottleneck);
      channels = block->out_channels();
      stage->push_back(block);
    }
    stages_[s] = register_module(fmt::format("layer{}", s + 1), stage);
    if (s >= 1) channels_[s - 1] = channels;
  }
  init_resnet(*this);
}

std::array<torch::Tensor, 3> ResNetBackboneImpl::forward(const torch::Tensor& x) {
  auto c2 = stages_[0]->forward(stem_->forward(x));
  auto c3 = stages_[1]->forward(c2);
  auto c4 = stages_[2]->forward(c3);
  auto c5 = stages_[3]->forward(c4);
  return {c3, c4, c5};
}

FeaturePyramidImpl::FeaturePyramidImpl(const std::array<std::int64_t, 3>& in_channels, std::int64_t channels) {
  for (std::size_t i = 0; i < 3; ++i) {
    lateral_[i] = register_module(fmt::format("lateral{}", i + 3), conv(in_channels[i], channels, 1, 1, true));
    smooth_[i] = register_module(fmt::format("smooth{}", i + 3), conv(channels, channels, 3, 1, true));
  }
  p6_ = register_module("p6", conv(channels, channels, 3, 2, true));
  p7_ = register_module("p7", conv(channels, channels, 3, 2, true));
  // torchvision's FPN initialisation: Kaiming uniform with a = 1, zero bias.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_uniform_(c->weight, 1.0);
      torch::nn::init::zeros_(c->bias);
    }
  }
}

std::vector<torch::Tensor> FeaturePyramidImpl::forward(const std::array<torch::Tensor, 3>& c) {
  namespace F = torch::nn::functional;
  auto top = lateral_[2]->forward(c[2]);
  std::array<torch::Tensor, 3> merged;
  merged[2] = top;
  for (int i = 1; i >= 0; --i) {
    const auto lateral = lateral_[static_cast<std::size_t>(i)]->forward(c[static_cast<std::size_t>(i)]);
    top = lateral + F::interpolate(top, F::InterpolateFuncOptions()
                                            .size(std::vector<std::int64_t>{lateral.size(2), lateral.size(3)})
                                            .mode(torch::kNearest));
    merged[static_cast<std::size_t>(i)] = top;
  }
  std::vector<torch::Tensor> p;
  for (std::size_t i = 0; i < 3; ++i) p.push_back(smooth_[i]->forward(merged[i]));
  p.push_back(p6_->forward(p[2]));
  p.push_back(p7_->forward(torch::relu(p[3])));
  return p;
}

}  // namespace chestlab::retinanet

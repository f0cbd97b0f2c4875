// retinanet: a one-stage box detector (Lin et al. 2017, "Focal Loss for Dense Object
// Detection") for one class, opacity, on 1-channel images.
//
//   backbone: ResNet-18, 34 or 50 (torchvision's layout, stride on the 3x3 convolution of
//             a bottleneck) with a 1-channel stem; C3, C4, C5 at strides 8, 16, 32
//   FPN:      1x1 laterals and a nearest-upsampling top-down path to P3-P5, 3x3 smoothing;
//             P6 = 3x3/2 conv of P5, P7 = 3x3/2 conv of ReLU(P6)
//   heads:    classification and box subnets shared across levels (convs x [3x3 conv, ReLU],
//             then a 3x3 conv to anchors x 1 logits or anchors x 4 deltas); the classifier's
//             bias starts at -log((1 - prior) / prior)
//   optional: an image-level opacity logit from C5 (global average pool, linear)
//
// forward() leaves the raw head outputs and the anchors in ModelOutput::extra, which the
// `retinanet_focal` loss reads; predict() decodes, thresholds, keeps the top-k per level,
// runs NMS and returns [N, 5] (score, x, y, w, h) boxes in input pixels.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "chestlab/detection/ops.h"
#include "chestlab/model.h"

namespace chestlab::retinanet {

struct RetinaNetOptions {
  std::int64_t in_channels = 1;
  std::int64_t depth = 50;          // 18, 34 or 50
  std::int64_t width = 64;          // channels of the stem; ResNet's 64
  std::int64_t fpn_channels = 256;
  std::int64_t head_convs = 4;
  std::vector<double> sizes{32, 64, 128, 256, 512};  // base anchor side on P3..P7, pixels
  std::vector<double> ratios{1.0, 1.5, 2.0};          // height / width
  std::vector<double> scales{1.0, 1.2599210498948732, 1.5874010519682994};
  double prior = 0.01;
  std::array<double, 4> box_weights{1.0, 1.0, 1.0, 1.0};
  double score_threshold = 0.05;
  std::int64_t top_k = 1000;  // per level, before NMS
  double nms_iou = 0.5;
  std::int64_t max_detections = 100;
  bool image_head = false;
  double gate = 0.0;  // images whose opacity probability is below get no boxes; 0 = off
};

// The keys of ModelOutput::extra (kClsLogits, ...) are the SDK's: see chestlab/detection/ops.h.
using namespace chestlab::detection::keys;

class ResBlockImpl : public torch::nn::Module {
 public:
  // A basic block (two 3x3 convs) or, with `bottleneck`, 1x1 -> 3x3 (stride) -> 1x1 x4.
  ResBlockImpl(std::int64_t in_channels, std::int64_t planes, std::int64_t stride, bool bottleneck);
  torch::Tensor forward(const torch::Tensor& x);
  std::int64_t out_channels() const { return out_channels_; }

 private:
  std::int64_t out_channels_;
  torch::nn::Sequential body_{nullptr};
  torch::nn::Sequential shortcut_{nullptr};  // empty when the identity fits
};
TORCH_MODULE(ResBlock);

class ResNetBackboneImpl : public torch::nn::Module {
 public:
  ResNetBackboneImpl(std::int64_t in_channels, std::int64_t depth, std::int64_t width);
  // C3, C4, C5.
  std::array<torch::Tensor, 3> forward(const torch::Tensor& x);
  std::array<std::int64_t, 3> channels() const { return channels_; }

 private:
  torch::nn::Sequential stem_{nullptr};
  std::array<torch::nn::Sequential, 4> stages_;
  std::array<std::int64_t, 3> channels_{};
};
TORCH_MODULE(ResNetBackbone);

class FeaturePyramidImpl : public torch::nn::Module {
 public:
  FeaturePyramidImpl(const std::array<std::int64_t, 3>& in_channels, std::int64_t channels);
  // P3..P7.
  std::vector<torch::Tensor> forward(const std::array<torch::Tensor, 3>& c);

 private:
  std::array<torch::nn::Conv2d, 3> lateral_{nullptr, nullptr, nullptr};
  std::array<torch::nn::Conv2d, 3> smooth_{nullptr, nullptr, nullptr};
  torch::nn::Conv2d p6_{nullptr};
  torch::nn::Conv2d p7_{nullptr};
};
TORCH_MODULE(FeaturePyramid);

// A subnet shared by all levels; returns [B, H * W * anchors, outputs] per level, cell-major.
class HeadImpl : public torch::nn::Module {
 public:
  HeadImpl(std::int64_t channels, std::int64_t convs, std::int64_t anchors, std::int64_t outputs, double bias);
  torch::Tensor forward(const torch::Tensor& feature);

 private:
  std::int64_t outputs_;
  torch::nn::Sequential tower_{nullptr};
  torch::nn::Conv2d out_{nullptr};
};
TORCH_MODULE(Head);

class RetinaNet : public chestlab::Model {
 public:
  explicit RetinaNet(const RetinaNetOptions& options);

  // images: float [B, in_channels, H, W], H and W at least 32.
  ModelOutput forward(const torch::Tensor& images) override;
  Prediction predict(const ModelOutput& output) override;

  const RetinaNetOptions& options() const { return options_; }
  // Anchors (corners) and their count per level for an input of height x width.
  std::pair<torch::Tensor, std::vector<std::int64_t>> anchors(
      const std::vector<std::pair<std::int64_t, std::int64_t>>& level_sizes) const;

 private:
  torch::Tensor detect_one(const torch::Tensor& cls, const torch::Tensor& deltas, const torch::Tensor& anchors,
                           const std::vector<std::int64_t>& per_level, double height, double width) const;

  RetinaNetOptions options_;
  ResNetBackbone backbone_{nullptr};
  FeaturePyramid fpn_{nullptr};
  Head cls_head_{nullptr};
  Head box_head_{nullptr};
  torch::nn::Linear image_head_{nullptr};
};

}  // namespace chestlab::retinanet

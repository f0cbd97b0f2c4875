// Box operations for detectors, as LibTorch tensor code (no torchvision): anchors, IoU,
// anchor matching, box encoding and decoding, non-maximum suppression and the sigmoid focal
// loss. One implementation that box models and box losses share.
//
// Boxes are float tensors [N, 4] in image pixels. Inside a detector they are corners
// (x1, y1, x2, y2); the SDK's datasets and predictions use (x, y, w, h), and
// xywh_to_xyxy / xyxy_to_xywh convert.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace chestlab::detection {

// What an anchor-based detector's forward() leaves in ModelOutput::extra for box losses
// (retinanet writes them, retinanet_focal reads them).
namespace keys {
inline constexpr const char* kClsLogits = "cls_logits";        // [B, A] anchor logits (one class)
inline constexpr const char* kBoxDeltas = "box_deltas";        // [B, A, 4] encoded boxes (BoxCoder)
inline constexpr const char* kAnchors = "anchors";             // [A, 4] corners in input pixels
inline constexpr const char* kLevelAnchors = "level_anchors";  // int64 [levels] anchors per level, CPU
inline constexpr const char* kBoxWeights = "box_weights";      // float64 [4] the BoxCoder's weights, CPU
inline constexpr const char* kImageSize = "image_size";        // int64 [2] input (height, width), CPU
}  // namespace keys

torch::Tensor xywh_to_xyxy(const torch::Tensor& boxes);
torch::Tensor xyxy_to_xywh(const torch::Tensor& boxes);

// [N, M] intersection over union of corner boxes a [N, 4] and b [M, 4]; 0 where a union is
// empty.
torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b);

// Anchors of one feature level: for every cell (row-major), one box per (ratio, scale) pair,
// ratios outer. Centred on ((x + 0.5) * stride, (y + 0.5) * stride); width
// size * scale / sqrt(ratio), height size * scale * sqrt(ratio): `ratios` are height / width.
struct AnchorLevel {
  std::int64_t height = 0;  // feature map rows
  std::int64_t width = 0;   // feature map columns
  double stride = 1.0;      // pixels per cell
  double size = 32.0;       // base side in pixels
};
// [sum over levels of height * width * ratios * scales, 4] corners, levels in order.
torch::Tensor make_anchors(const std::vector<AnchorLevel>& levels, const std::vector<double>& ratios,
                           const std::vector<double>& scales);

// Label of every anchor from the IoU matrix [G, A] (truth x anchor): the index of its truth
// box when IoU >= fg_iou, kBackground when IoU < bg_iou, kIgnore in between. With
// `force_best`, the anchors of highest IoU with each truth box (ties included, IoU > 0) are
// positive whatever the thresholds, matched to their own best truth box.
constexpr std::int64_t kBackground = -1;
constexpr std::int64_t kIgnore = -2;
torch::Tensor match_anchors(const torch::Tensor& iou, double fg_iou, double bg_iou, bool force_best = true);
// Same for A anchors and no truth boxes: every anchor is background.
torch::Tensor match_nothing(std::int64_t anchors, const torch::Device& device);

// The standard R-CNN box parametrisation: dx = wx (gx - ax) / aw, dy = wy (gy - ay) / ah,
// dw = ww log(gw / aw), dh = wh log(gh / ah), centres and sizes of corner boxes. Decoding
// clamps dw / ww and dh / wh at log(1000 / 16) so that exp() cannot overflow.
struct BoxCoder {
  std::array<double, 4> weights{1.0, 1.0, 1.0, 1.0};
  torch::Tensor encode(const torch::Tensor& anchors, const torch::Tensor& boxes) const;  // [N, 4] each
  torch::Tensor decode(const torch::Tensor& anchors, const torch::Tensor& deltas) const;
};

// Greedy non-maximum suppression: indices into `boxes` (corners [N, 4]) by decreasing score,
// dropping every box whose IoU with an already kept one is > iou_threshold. Stops after
// `max_keep` boxes when max_keep > 0. int64 [K] on the boxes' device.
torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold,
                  std::int64_t max_keep = 0);

// Element-wise sigmoid focal loss (Lin et al. 2017) of logits against 0/1 targets:
// -alpha t (1 - p)^gamma log p - (1 - alpha)(1 - t) p^gamma log(1 - p). alpha < 0 disables
// the alpha weighting (both terms weigh 1).
torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha,
                                 double gamma);

// Element-wise smooth L1: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere; beta 0 is L1.
torch::Tensor smooth_l1(const torch::Tensor& diff, double beta);

}  // namespace chestlab::detection

#include "chestlab/detection/ops.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace chestlab::detection {

namespace {

void check_boxes(const torch::Tensor& boxes, const char* what) {
  if (!boxes.defined() || boxes.dim() != 2 || boxes.size(1) != 4)
    throw std::invalid_argument(fmt::format("detection: {} must be a [N, 4] tensor", what));
}

// Clamp of the decoded log-size deltas, as Detectron and torchvision.
const double kMaxLogScale = std::log(1000.0 / 16.0);

}  // namespace

torch::Tensor xywh_to_xyxy(const torch::Tensor& boxes) {
  check_boxes(boxes, "xywh boxes");
  const auto xy = boxes.slice(1, 0, 2);
  return torch::cat({xy, xy + boxes.slice(1, 2, 4)}, 1);
}

torch::Tensor xyxy_to_xywh(const torch::Tensor& boxes) {
  check_boxes(boxes, "corner boxes");
  const auto xy = boxes.slice(1, 0, 2);
  return torch::cat({xy, boxes.slice(1, 2, 4) - xy}, 1);
}

torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b) {
  check_boxes(a, "IoU boxes (first)");
  check_boxes(b, "IoU boxes (second)");
  const auto area_a = (a.select(1, 2) - a.select(1, 0)).clamp_min(0) * (a.select(1, 3) - a.select(1, 1)).clamp_min(0);
  const auto area_b = (b.select(1, 2) - b.select(1, 0)).clamp_min(0) * (b.select(1, 3) - b.select(1, 1)).clamp_min(0);
  const auto top_left = torch::max(a.slice(1, 0, 2).unsqueeze(1), b.slice(1, 0, 2).unsqueeze(0));      // [N, M, 2]
  const auto bottom_right = torch::min(a.slice(1, 2, 4).unsqueeze(1), b.slice(1, 2, 4).unsqueeze(0));  // [N, M, 2]
  const auto wh = (bottom_right - top_left).clamp_min(0);
  const auto inter = wh.select(2, 0) * wh.select(2, 1);
  const auto uni = area_a.unsqueeze(1) + area_b.unsqueeze(0) - inter;
  return torch::where(uni > 0, inter / uni.clamp_min(1e-12), torch::zeros_like(inter));
}

torch::Tensor make_anchors(const std::vector<AnchorLevel>& levels, const std::vector<double>& ratios,
                           const std::vector<double>& scales) {
  if (ratios.empty() || scales.empty()) throw std::invalid_argument("detection: anchors need ratios and scales");
  // Width and height of each (ratio, scale) shape per unit of base size, ratios outer.
  std::vector<float> unit_values;
  for (double ratio : ratios)
    for (double scale : scales) {
      if (!(ratio > 0) || !(scale > 0)) throw std::invalid_argument("detection: anchor ratios and scales must be > 0");
      unit_values.push_back(static_cast<float>(scale / std::sqrt(ratio)));
      unit_values.push_back(static_cast<float>(scale * std::sqrt(ratio)));
    }
  const auto unit = torch::tensor(unit_values).view({-1, 2});
  std::vector<torch::Tensor> out;
  for (const AnchorLevel& level : levels) {
    const auto wh = unit * level.size;                                           // [S, 2]
    const auto half = torch::cat({-0.5 * wh, 0.5 * wh}, 1);                      // [S, 4]
    const auto xs = (torch::arange(level.width, torch::kFloat32) + 0.5) * level.stride;
    const auto ys = (torch::arange(level.height, torch::kFloat32) + 0.5) * level.stride;
    const auto grid = torch::meshgrid({ys, xs}, "ij");  // [H, W] each
    const auto cy = grid[0].reshape({-1}), cx = grid[1].reshape({-1});
    const auto centres = torch::stack({cx, cy, cx, cy}, 1);                      // [H*W, 4]
    out.push_back((centres.unsqueeze(1) + half.unsqueeze(0)).reshape({-1, 4}));  // cell-major, shape-minor
  }
  if (out.empty()) return torch::zeros({0, 4});
  return torch::cat(out, 0);
}

torch::Tensor match_nothing(std::int64_t anchors, const torch::Device& device) {
  return torch::full({anchors}, kBackground, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

torch::Tensor match_anchors(const torch::Tensor& iou, double fg_iou, double bg_iou, bool force_best) {
  if (iou.dim() != 2) throw std::invalid_argument("detection: match_anchors needs a [G, A] IoU matrix");
  if (bg_iou > fg_iou)
    throw std::invalid_argument(fmt::format("detection: bg_iou ({}) must not exceed fg_iou ({})", bg_iou, fg_iou));
  if (iou.size(0) == 0) return match_nothing(iou.size(1), iou.device());
  const auto best = iou.max(0);  // per anchor: best IoU and its truth box
  const auto best_iou = std::get<0>(best);
  const auto best_truth = std::get<1>(best);
  auto matches = best_truth.clone();
  matches.masked_fill_(best_iou < fg_iou, kIgnore);
  matches.masked_fill_(best_iou < bg_iou, kBackground);
  if (force_best) {
    // Every truth box's best anchors (ties too), as long as they overlap it at all.
    const auto per_truth_best = std::get<0>(iou.max(1, /*keepdim=*/true));  // [G, 1]
    const auto is_best = ((iou == per_truth_best) & (per_truth_best > 0)).any(0);
    matches = torch::where(is_best, best_truth, matches);
  }
  return matches;
}

torch::Tensor BoxCoder::encode(const torch::Tensor& anchors, const torch::Tensor& boxes) const {
  check_boxes(anchors, "anchors");
  check_boxes(boxes, "boxes to encode");
  const auto aw = anchors.select(1, 2) - anchors.select(1, 0), ah = anchors.select(1, 3) - anchors.select(1, 1);
  const auto ax = anchors.select(1, 0) + 0.5 * aw, ay = anchors.select(1, 1) + 0.5 * ah;
  const auto gw = boxes.select(1, 2) - boxes.select(1, 0), gh = boxes.select(1, 3) - boxes.select(1, 1);
  const auto gx = boxes.select(1, 0) + 0.5 * gw, gy = boxes.select(1, 1) + 0.5 * gh;
  return torch::stack({weights[0] * (gx - ax) / aw, weights[1] * (gy - ay) / ah, weights[2] * torch::log(gw / aw),
                       weights[3] * torch::log(gh / ah)},
                      1);
}

torch::Tensor BoxCoder::decode(const torch::Tensor& anchors, const torch::Tensor& deltas) const {
  check_boxes(anchors, "anchors");
  check_boxes(deltas, "box deltas");
  const auto aw = anchors.select(1, 2) - anchors.select(1, 0), ah = anchors.select(1, 3) - anchors.select(1, 1);
  const auto ax = anchors.select(1, 0) + 0.5 * aw, ay = anchors.select(1, 1) + 0.5 * ah;
  const auto dx = deltas.select(1, 0) / weights[0], dy = deltas.select(1, 1) / weights[1];
  const auto dw = (deltas.select(1, 2) / weights[2]).clamp_max(kMaxLogScale);
  const auto dh = (deltas.select(1, 3) / weights[3]).clamp_max(kMaxLogScale);
  const auto cx = dx * aw + ax, cy = dy * ah + ay;
  const auto w = torch::exp(dw) * aw, h = torch::exp(dh) * ah;
  return torch::stack({cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h}, 1);
}

torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold,
                  std::int64_t max_keep) {
  check_boxes(boxes, "NMS boxes");
  if (scores.dim() != 1 || scores.size(0) != boxes.size(0))
    throw std::invalid_argument("detection: NMS needs one score per box");
  // Stable descending sort: equal scores keep their input order.
  const auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  // The greedy loop decides box by box; on a GPU each decision read from the device would
  // wait for it. So the sorted boxes come to the CPU in one copy and the loop runs there, with
  // the same IoU arithmetic (box_iou, element-wise IEEE operations) as on the device.
  const auto sorted = boxes.index_select(0, order).to(torch::kCPU);
  auto candidates = torch::arange(sorted.size(0), torch::kInt64);  // positions in `sorted`, best first
  std::vector<std::int64_t> keep;
  // Remaining candidates, best first: keep the first, drop what it overlaps, repeat.
  while (candidates.numel() > 0) {
    const std::int64_t first = candidates.data_ptr<std::int64_t>()[0];
    keep.push_back(first);
    if (candidates.numel() == 1 || (max_keep > 0 && static_cast<std::int64_t>(keep.size()) >= max_keep)) break;
    const auto rest = candidates.slice(0, 1);
    const auto overlap = box_iou(sorted.slice(0, first, first + 1), sorted.index_select(0, rest))[0];
    candidates = rest.masked_select(overlap <= iou_threshold);
  }
  const auto kept = torch::tensor(keep, torch::kInt64).to(order.device());
  return order.index_select(0, kept);
}

torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha,
                                 double gamma) {
  const auto log_p = torch::log_sigmoid(logits);
  const auto log_not_p = torch::log_sigmoid(-logits);
  // (1 - p)^gamma as exp(gamma log(1 - p)): finite gradient at saturation for gamma < 1.
  auto positive = -torch::exp(gamma * log_not_p) * log_p;
  auto negative = -torch::exp(gamma * log_p) * log_not_p;
  if (alpha >= 0) {
    positive = alpha * positive;
    negative = (1.0 - alpha) * negative;
  }
  return targets * positive + (1.0 - targets) * negative;
}

torch::Tensor smooth_l1(const torch::Tensor& diff, double beta) {
  const auto d = diff.abs();
  if (beta <= 0) return d;
  return torch::where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta);
}

}  // namespace chestlab::detection

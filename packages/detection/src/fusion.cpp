#include "chestlab/detection/fusion.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "chestlab/detection/ops.h"

namespace chestlab::detection {

namespace {

bool usable(const ScoredBox& b) {
  return std::isfinite(b.score) && std::isfinite(b.box.x) && std::isfinite(b.box.y) && std::isfinite(b.box.w) &&
         std::isfinite(b.box.h);
}

void check(const FusionOptions& options) {
  if (!(options.iou_threshold > 0.0 && options.iou_threshold <= 1.0))
    throw std::invalid_argument(fmt::format("box fusion: iou_threshold must be in (0, 1], got {}", options.iou_threshold));
  if (!(options.skip_below >= 0.0 && options.skip_below < 1.0))
    throw std::invalid_argument(fmt::format("box fusion: skip_below must be in [0, 1), got {}", options.skip_below));
}

// A WBF cluster: running confidence-weighted sums of its boxes' corners, so the fused box is
// the weighted mean of every member, not a running average of running averages.
struct Cluster {
  std::size_t members = 0;
  double score_sum = 0.0;
  double x1 = 0.0, y1 = 0.0, x2 = 0.0, y2 = 0.0;  // sums of score * corner
  double plain_x1 = 0.0, plain_y1 = 0.0, plain_x2 = 0.0, plain_y2 = 0.0;  // sums of corners
  Box fused;

  void add(const ScoredBox& b) {
    ++members;
    score_sum += b.score;
    x1 += b.score * b.box.x;
    y1 += b.score * b.box.y;
    x2 += b.score * b.box.right();
    y2 += b.score * b.box.bottom();
    plain_x1 += b.box.x;
    plain_y1 += b.box.y;
    plain_x2 += b.box.right();
    plain_y2 += b.box.bottom();
    // Boxes of confidence 0 carry no weight; a cluster of only such boxes takes their plain mean.
    const bool weighted = score_sum > 0.0;
    const double n = weighted ? score_sum : static_cast<double>(members);
    const double left = (weighted ? x1 : plain_x1) / n, top = (weighted ? y1 : plain_y1) / n;
    const double right = (weighted ? x2 : plain_x2) / n, bottom = (weighted ? y2 : plain_y2) / n;
    fused = {left, top, right - left, bottom - top};
  }
};

// The cluster whose fused box overlaps `box` most with IoU >= threshold (the first on ties).
std::optional<std::size_t> best_cluster(const std::vector<Cluster>& clusters, const Box& box, double threshold) {
  std::optional<std::size_t> best;
  double best_iou = 0.0;
  for (std::size_t i = 0; i < clusters.size(); ++i) {
    const double overlap = iou(clusters[i].fused, box);
    if (overlap >= threshold && (!best || overlap > best_iou)) {
      best = i;
      best_iou = overlap;
    }
  }
  return best;
}

void sort_by_score(std::vector<ScoredBox>& boxes) {
  std::stable_sort(boxes.begin(), boxes.end(), [](const ScoredBox& a, const ScoredBox& b) { return a.score > b.score; });
}

}  // namespace

std::vector<ScoredBox> concatenate_views(const std::vector<std::vector<ScoredBox>>& views) {
  std::vector<ScoredBox> all;
  for (const auto& view : views) all.insert(all.end(), view.begin(), view.end());
  sort_by_score(all);
  return all;
}

std::vector<ScoredBox> weighted_boxes_fusion(const std::vector<std::vector<ScoredBox>>& views,
                                             const FusionOptions& options) {
  check(options);
  std::vector<ScoredBox> candidates;
  for (const auto& view : views)
    for (const auto& b : view)
      if (usable(b) && b.score >= options.skip_below) candidates.push_back(b);
  sort_by_score(candidates);

  std::vector<Cluster> clusters;
  for (const auto& b : candidates) {
    if (auto at = best_cluster(clusters, b.box, options.iou_threshold)) {
      clusters[*at].add(b);
    } else {
      clusters.emplace_back();
      clusters.back().add(b);
    }
  }

  const double models = static_cast<double>(std::max<std::size_t>(views.size(), 1));
  std::vector<ScoredBox> fused;
  fused.reserve(clusters.size());
  for (const auto& c : clusters) {
    const double members = static_cast<double>(c.members);
    const double mean_score = c.score_sum / members;
    fused.push_back({mean_score * std::min(members, models) / models, c.fused});
  }
  sort_by_score(fused);
  return fused;
}

std::vector<ScoredBox> nms_fusion(const std::vector<std::vector<ScoredBox>>& views, const FusionOptions& options) {
  check(options);
  std::vector<ScoredBox> all;
  for (const auto& view : views)
    for (const auto& b : view)
      if (usable(b)) all.push_back(b);
  if (all.empty()) return all;
  auto corners = torch::empty({static_cast<std::int64_t>(all.size()), 4}, torch::kFloat64);
  auto scores = torch::empty({static_cast<std::int64_t>(all.size())}, torch::kFloat64);
  auto c = corners.accessor<double, 2>();
  auto s = scores.accessor<double, 1>();
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto row = static_cast<std::int64_t>(i);
    c[row][0] = all[i].box.x;
    c[row][1] = all[i].box.y;
    c[row][2] = all[i].box.right();
    c[row][3] = all[i].box.bottom();
    s[row] = all[i].score;
  }
  const torch::Tensor keep = nms(corners, scores, options.iou_threshold).to(torch::kCPU).contiguous();
  std::vector<ScoredBox> kept;
  const auto* index = keep.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < keep.numel(); ++i) kept.push_back(all[static_cast<std::size_t>(index[i])]);
  sort_by_score(kept);
  return kept;
}

std::optional<FuseMethod> parse_fuse_method(const std::string& name) {
  if (name == "wbf") return FuseMethod::Wbf;
  if (name == "nms") return FuseMethod::Nms;
  if (name == "concat") return FuseMethod::Concat;
  return std::nullopt;
}

std::string to_string(FuseMethod method) {
  switch (method) {
    case FuseMethod::Wbf: return "wbf";
    case FuseMethod::Nms: return "nms";
    case FuseMethod::Concat: return "concat";
  }
  return "unknown";
}

std::vector<ScoredBox> fuse_views(const std::vector<std::vector<ScoredBox>>& views, FuseMethod method,
                                  const FusionOptions& options) {
  switch (method) {
    case FuseMethod::Wbf: return weighted_boxes_fusion(views, options);
    case FuseMethod::Nms: return nms_fusion(views, options);
    case FuseMethod::Concat: return concatenate_views(views);
  }
  throw std::invalid_argument("box fusion: unknown method");
}

}  // namespace chestlab::detection

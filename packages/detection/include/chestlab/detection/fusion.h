// Ensembles of box predictions: several models (folds) or test-time views each give a list
// of boxes for the same image, and one list must come out. Concatenating them gives k
// near-copies of every box that k models agree on, and all copies but one are false positives
// at every IoU threshold of a detection metric; fusion merges them.
//
// Weighted boxes fusion (Solovyev, Wang and Gabruseva, "Weighted boxes fusion: Ensembling
// boxes from different object detection models", Image and Vision Computing 2021):
//  1. Every box of every model, boxes below skip_below dropped, in one list sorted by
//     confidence, descending (stable: equal confidences keep model order, then box order).
//  2. Each box in turn joins the cluster whose fused box it overlaps most, if that IoU is
//     >= iou_threshold; otherwise it starts a new cluster. The fused box of a cluster is
//     recomputed after every join: coordinates are the confidence-weighted mean of its boxes'
//     corners, confidence the mean of its boxes' confidences.
//  3. Each fused confidence is multiplied by min(T, N) / N, T the cluster's box count and N the
//     number of models, so a box that only some models saw is trusted less.
// Unlike NMS, every box contributes to the position of its cluster instead of all but the best
// being thrown away.
//
// Defaults: iou_threshold 0.55 is the paper's and its reference implementation's default; with
// the RSNA metric (IoU thresholds 0.40 ... 0.75) two folds' boxes of one opacity overlap far
// more than that, and boxes of two neighbouring opacities far less. skip_below 0 keeps every
// box: callers filter each model's boxes with their own post-processing first (rsna_map's
// min_score), so a second cut here would be a second, hidden threshold.
//
// Torch-free API (only the NMS method uses LibTorch inside).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chestlab/box.h"

namespace chestlab::detection {

struct FusionOptions {
  double iou_threshold = 0.55;  // wbf: joins a cluster at IoU >= this; nms: suppresses at IoU > this
  double skip_below = 0.0;      // wbf: boxes with a lower confidence take no part
};

// One list per model (view); the number of models is views.size(). Returns the fused boxes,
// highest confidence first. Throws std::invalid_argument for options out of range
// (iou_threshold outside (0, 1], skip_below outside [0, 1)).
std::vector<ScoredBox> weighted_boxes_fusion(const std::vector<std::vector<ScoredBox>>& views,
                                             const FusionOptions& options = {});

// Every view's boxes in one list, then greedy NMS (detection::nms) at options.iou_threshold:
// the documented alternative to WBF, which keeps the best copy instead of averaging them.
std::vector<ScoredBox> nms_fusion(const std::vector<std::vector<ScoredBox>>& views,
                                  const FusionOptions& options = {});

// All boxes of all views, highest confidence first (stable): no fusion.
std::vector<ScoredBox> concatenate_views(const std::vector<std::vector<ScoredBox>>& views);

enum class FuseMethod { Wbf, Nms, Concat };

// "wbf" | "nms" | "concat"; nullopt for anything else.
std::optional<FuseMethod> parse_fuse_method(const std::string& name);
std::string to_string(FuseMethod method);

// The chosen method applied to the views.
std::vector<ScoredBox> fuse_views(const std::vector<std::vector<ScoredBox>>& views, FuseMethod method,
                                  const FusionOptions& options = {});

}  // namespace chestlab::detection

// Per-image metric values, for the metrics that offer them.
//
// A metric offers them by declaring `tags["per_image"] = "mean"` in its ComponentInfo: its
// value is the mean over images of a score each image has on its own (mean_iou, dice). The
// host then scores every image alone with a second instance of the metric (reset, update
// with that image, compute), so plugins need no extra entry point and the plugin ABI is
// unchanged. Metrics over a whole set (pooled pixel accuracy, mAP) do not declare it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"
#include "chestlab/host/experiment.h"

namespace chestlab {

// The tag and its one value.
inline constexpr const char* kPerImageTag = "per_image";
inline constexpr const char* kPerImageMean = "mean";

// True when the metric plugin `name` offers per-image values.
bool offers_per_image(const PluginRegistry& registry, const std::string& name);

// Image `index` of a batch or a prediction, as a batch of one (tensors are views).
Batch image_of(const Batch& batch, std::int64_t index);
Prediction image_of(const Prediction& prediction, std::int64_t index);

// Collects the per-image values of one evaluation.
class PerImageScorer {
 public:
  // One instance of every [[metrics]] entry whose plugin offers per-image values.
  explicit PerImageScorer(const Experiment& experiment);

  bool active() const { return !metrics_.empty(); }
  void reset();
  // Scores each image of `batch` (CPU tensors, as Metric::update takes them).
  void add(const Prediction& prediction, const Batch& batch);
  // What was collected since reset(); names are the [[metrics]] names.
  const PerImageScores& scores() const { return scores_; }

 private:
  std::vector<std::shared_ptr<Metric>> metrics_;
  PerImageScores scores_;
};

}  // namespace chestlab

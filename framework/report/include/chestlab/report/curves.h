// Learning curves of a run file (`chestlab curves`, and the figures of `chestlab report`):
// per fold, training and validation loss against epoch, and the monitored metric (or every
// metric) against epoch with each fold's best epoch marked. One colour per fold. Torch-free.
#pragma once

#include <string>
#include <vector>

#include "chestlab/report/plot.h"
#include "chestlab/engine/runfile.h"

namespace chestlab {

struct CurveChart {
  std::string name;  // "loss" or the metric's name; used in file names
  plot::LineChart chart;
};

// "loss" first, then the monitor metric (all metrics with `all_metrics`, monitor first).
// Folds without history rows are left out; a run without any gives only empty charts.
std::vector<CurveChart> learning_curves(const RunInfo& run, bool all_metrics = false);

// Writes `<prefix><name>.<png|svg>` per chart into `dir` (created); returns the paths written.
// Characters of a metric name that are not [A-Za-z0-9._-] become '_'. Throws DataError when a
// file cannot be written.
std::vector<std::string> write_learning_curves(const RunInfo& run, const std::string& dir, const std::string& prefix,
                                               plot::ImageFormat format, bool all_metrics = false,
                                               plot::Size size = {800, 450});

}  // namespace chestlab

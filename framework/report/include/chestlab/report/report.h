// `chestlab report`: one self-contained HTML page over run files (no external resources:
// styles inline, learning curves as SVG data URIs). For every run: experiment and run id,
// a configuration summary, a per-fold table of best-epoch values with mean ± std (from
// compare.h's table), holdout test values, and the learning curves (curves.h). Torch-free.
#pragma once

#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"

namespace chestlab {

struct ReportOptions {
  std::string title = "chestlab report";
  std::string source;                 // shown under the title, e.g. the results folder
  std::vector<std::string> problems;  // files skipped while collecting runs, shown in a note
  bool all_metrics = false;           // a curve per metric, not only the monitor's
};

// Run files under `dir` (recursively; files ending in .h5 that read as run files), sorted by
// path. Other .h5 files (e.g. preprocessing caches) go to `skipped` as "path: reason".
// A `dir` that is a run file itself gives that file. Throws DataError when `dir` is missing.
std::vector<RunInfo> collect_runs(const std::string& dir, std::vector<std::string>& skipped);

std::string render_report_html(const std::vector<RunInfo>& runs, const ReportOptions& options);

// Text for HTML element content and attribute values (& < > " ').
std::string html_escape(const std::string& text);
// RFC 4648 base64 with padding.
std::string base64_encode(const std::string& bytes);

}  // namespace chestlab

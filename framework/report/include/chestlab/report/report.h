// `chestlab report`: one self-contained HTML page over run files (no external resources:
// styles inline, learning curves as SVG data URIs). For every run: experiment and run id,
// a configuration summary, a per-fold table of best-epoch values with mean ± std (from
// compare.h's table), holdout test values, the learning curves (curves.h), and where the run
// file has per-image values a histogram per metric and the worst images. Torch-free.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"

namespace chestlab {

struct ReportOptions {
  std::string title = "chestlab report";
  std::string source;                 // shown under the title, e.g. the results folder
  std::vector<std::string> problems;  // files skipped while collecting runs, shown in a note
  bool all_metrics = false;           // a curve per metric, not only the monitor's
  // Runs with per-image values (compare.h's summarize_per_image): per metric a histogram of
  // the validation values over the finished folds, and a table of this many worst images.
  int worst_images = 5;

  // What the lock files say (live.h): run files (paths) whose status is "running" while no
  // process holds their lock, e.g. a run killed with kill -9. Shown as such; they do not keep
  // a live page reloading.
  std::set<std::string> abandoned;
  // A `chestlab sweep` holds the lock of a sweep folder under the results: more runs may come.
  bool sweep_running = false;
  // Runs shown as read earlier because their file could not be read this time (the watcher
  // keeps the last good read): path -> why, shown in a note.
  std::map<std::string, std::string> stale;

  // A live page (`chestlab report --watch`): while something is running (any_running), the
  // page reloads itself every `live_refresh_seconds` (a <meta http-equiv="refresh">) and says
  // "live: refreshes every N s, last written HH:MM:SS". 0: a page that never reloads.
  int live_refresh_seconds = 0;
  std::string written_at;  // HH:MM:SS of the live line; empty: the local time now
};

// Whether anything in the page is still going: a run whose status is "running" and that is
// not in `options.abandoned`, or a sweep at work (`options.sweep_running`).
bool any_running(const std::vector<RunInfo>& runs, const ReportOptions& options);
// Whether render_report_html writes the refresh tag: live_refresh_seconds > 0 and any_running.
bool page_is_live(const std::vector<RunInfo>& runs, const ReportOptions& options);

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

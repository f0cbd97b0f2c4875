// Side-by-side comparison of runs (`chestlab compare`): per fold the value of a metric at
// that fold's best epoch, and mean ± sample std over the finished folds (the run file's
// summary rule, see compute_summary). Folds not finished are shown but marked and left out
// of mean ± std.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"

namespace chestlab {

enum class CompareFormat { Table, Csv, Markdown };
// "table" | "csv" | "markdown"; throws ConfigError naming the allowed values.
CompareFormat parse_compare_format(const std::string& text);

struct CompareCell {
  bool exists = false;  // the run has this fold
  FoldStatus status = FoldStatus::Pending;
  std::optional<double> value;  // at the best epoch; nullopt without one
};

struct CompareRow {
  std::string run;  // "<experiment>/<run id>"
  std::vector<std::string> params;  // one per CompareTable::param_columns
  RunStatus status = RunStatus::Running;
  std::vector<CompareCell> folds;  // one per fold column
  double mean = 0;
  double std = 0;
  std::int64_t n_folds = 0;  // finished folds in mean ± std; 0: no mean
  std::optional<double> test;
};

struct CompareBlock {
  std::string metric;
  std::vector<CompareRow> rows;  // one per run, in the order given
};

struct CompareTable {
  std::vector<std::string> param_columns;  // swept parameter paths shown after the run
  int fold_columns = 0;   // highest fold index of any run + 1
  bool has_test = false;  // some run has /test
  std::vector<CompareBlock> blocks;
};

// One block for `metric`, or one per metric of any run (in order of first appearance) when
// it is nullopt. Throws ConfigError when `metric` is in no run, naming those available.
CompareTable build_compare_table(const std::vector<RunInfo>& runs, const std::optional<std::string>& metric);

struct CompareOptions {
  std::vector<std::string> metrics;  // one block each; empty: every metric of any run
  std::vector<std::string> param_columns;       // parameter paths shown as columns
  std::vector<std::vector<std::string>> params; // per run (in the order of `runs`), one value per column
  std::optional<std::string> sort_by;           // rows best first by this metric's mean (its mode decides)
};
// Throws ConfigError when a metric (or sort_by) is in no run, naming those available.
CompareTable build_compare_table(const std::vector<RunInfo>& runs, const CompareOptions& options);

// The TOML text of a key of a resolved config ("optimizer.lr", "metrics.0.threshold"); "" when
// absent.
std::string config_value(const std::string& config_toml, const std::string& path);
// Paths (in the configs' order) whose values differ between the runs' recorded configs, leaving
// out experiment.output; what a sweep varied, when there is no manifest to say.
std::vector<std::string> differing_config_paths(const std::vector<RunInfo>& runs);
// True when `metric` is maximised in this run (its monitor mode or its [[metrics]] mode);
// true when unknown.
bool metric_maximized(const RunInfo& run, const std::string& metric);

// `compare --paired A B`: fold-by-fold differences A - B of a metric over the folds finished
// in both, and with 5 or more such folds a two-sided paired t-test (Student's t, n - 1 degrees
// of freedom, Boost.Math).
struct PairedFold {
  int fold = 0;
  double a = 0, b = 0, diff = 0;
};
struct PairedComparison {
  std::string metric, run_a, run_b;
  std::vector<PairedFold> folds;
  double mean_diff = 0, std_diff = 0;  // sample std (ddof = 1)
  std::optional<double> t, p;          // with >= 5 folds
  int df = 0;
  bool same_folds = true;  // fold k holds the same validation samples in both runs
};
PairedComparison compare_paired(const RunInfo& a, const RunInfo& b, const std::string& metric);
// The paired t statistic and two-sided p-value of differences (nullopt t when they are all
// equal; p is then 1 for all-zero differences and 0 otherwise).
void paired_t_test(const std::vector<double>& diffs, std::optional<double>& t, double& p);
std::string render_paired(const PairedComparison& paired, CompareFormat format);

// Numbers with 4 decimals. csv: one header line, then one line per (metric, run) with the
// columns metric,run,status,fold_0..fold_<n-1>,mean,std,n_folds,incomplete_folds[,test].
std::string render_compare(const CompareTable& table, CompareFormat format);

}  // namespace chestlab

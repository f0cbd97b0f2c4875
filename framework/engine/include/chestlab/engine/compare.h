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

// Mean ± sample std over the finished folds of one repeat ([cv] repeats > 1).
struct RepeatSummary {
  double mean = 0;
  double std = 0;
  std::int64_t n_folds = 0;  // 0: no mean
};

struct CompareRow {
  std::string run;  // "<experiment>/<run id>"
  std::vector<std::string> params;  // one per CompareTable::param_columns
  RunStatus status = RunStatus::Running;
  std::vector<CompareCell> folds;  // one per fold column
  double mean = 0;
  double std = 0;
  std::int64_t n_folds = 0;  // finished folds in mean ± std; 0: no mean
  std::vector<RepeatSummary> repeats;  // one per CompareTable::repeat_columns
  std::optional<double> test;
};

struct CompareBlock {
  std::string metric;
  std::vector<CompareRow> rows;  // one per run, in the order given
};

struct CompareTable {
  std::vector<std::string> param_columns;  // swept parameter paths shown after the run
  int fold_columns = 0;   // highest fold index of any run + 1
  // Repeated cross-validation: highest repeat of any run + 1 when some run has a repeat > 0
  // (then a "repeat r" mean ± std column each), else 0.
  int repeat_columns = 0;
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

// ---- per-image values (`compare --per-image`, the report) --------------------------------
// A run file keeps, for the metrics that offer them (runfile.h's PerImageScores), each fold's
// validation at its best epoch image by image, and the holdout test's. Only finished folds
// (complete or stopped early) count, as in mean ± std and compare_paired; folds not finished
// are named as left out. Values that are not finite are left out and counted.

enum class PerImagePart { Validation, Test };
std::string to_string(PerImagePart part);  // "validation" | "test"

// The metrics with per-image values in a run, in order of first appearance (folds, then the
// test part); empty for a run file that has none (no metric offers them, or an older file).
std::vector<std::string> per_image_metrics(const RunInfo& run);
// "run R has no per-image values of 'M'; per-image values in R: a, b" (or why there are none);
// with an empty `metric`, "run R has no per-image values (...)".
std::string per_image_missing(const RunInfo& run, const std::string& metric);

struct PerImageValue {
  int fold = -1;  // -1: the test part
  std::string id;
  double value = 0;
};

// One metric of one run image by image, over its finished folds (Validation) or the test part.
struct PerImageSummary {
  std::string run;  // "<experiment>/<run id>"
  std::string metric;
  PerImagePart part = PerImagePart::Validation;
  bool maximize = true;               // metric_maximized: what "worst" means
  std::vector<int> folds;             // Validation: the folds whose values are in
  std::vector<int> unfinished_folds;  // Validation: folds with values, not finished: left out
  std::size_t n = 0;                  // finite values
  std::size_t non_finite = 0;         // left out
  double mean = 0, median = 0, min = 0, max = 0;  // 0 when n == 0
  double share_one = 0, share_zero = 0;  // share of the n values exactly 1.0 and exactly 0.0
  std::vector<PerImageValue> worst;      // up to `worst` of them, worst first (ties: fold, then id)
  std::vector<double> values;            // the n values, fold by fold in the file's order
};
// Throws ConfigError (per_image_missing) when the run has no per-image values of `metric` in
// that part. Validation values only in folds not finished give n == 0 and unfinished_folds.
PerImageSummary summarize_per_image(const RunInfo& run, const std::string& metric, PerImagePart part,
                                    int worst = 5);
// Every metric of per_image_metrics, its validation part then its test part where present.
std::vector<PerImageSummary> summarize_per_image(const RunInfo& run, int worst = 5);

// The Wilcoxon signed-rank test of paired differences, two-sided, with the normal
// approximation and no continuity correction (scipy.stats.wilcoxon(x, y, correction=False,
// mode='approx'), zero_method 'wilcox'): zero differences are dropped, tied |differences|
// get the average of their ranks, and the variance n(n+1)(2n+1)/24 loses sum(t^3 - t)/48 over
// the groups of t ties.
struct WilcoxonResult {
  std::size_t n = 0;      // non-zero differences ranked
  std::size_t zeros = 0;  // zero differences dropped
  double w_plus = 0, w_minus = 0;  // rank sums of the positive and the negative differences
  double statistic = 0;            // min(w_plus, w_minus)
  double z = 0;  // (w_plus - n(n+1)/4) / sd: > 0 when the differences lean positive
  double p = 1;  // two-sided; 1 without a non-zero difference
  bool tested = false;  // false without a non-zero difference
};
WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& diffs);

struct PerImagePair {
  int fold = -1;  // -1: the test part
  std::string id;
  double a = 0, b = 0, diff = 0;  // diff = a - b
};
struct PerImagePartComparison {
  PerImagePart part = PerImagePart::Validation;
  std::vector<int> folds;           // Validation: the folds paired
  std::vector<PerImagePair> pairs;  // fold by fold, in A's order
  // Images (of the folds paired) in one run only: not paired, counted.
  std::size_t only_a = 0, only_b = 0;
  std::size_t non_finite = 0;  // pairs left out: a value not finite
  double mean_a = 0, mean_b = 0, mean_diff = 0;
  std::size_t a_better = 0, b_better = 0, tied = 0;  // by the metric's direction
  WilcoxonResult wilcoxon;
};
// `compare --per-image --paired A B`: images paired by (fold, id) over the folds finished in
// both runs with per-image values of the metric, and separately over the test part when both
// have one. An id that repeats within a fold pairs its k-th occurrence in A with its k-th in B.
struct PerImageComparison {
  std::string metric, run_a, run_b;
  bool maximize = true;  // metric_maximized(A, metric)
  std::optional<PerImagePartComparison> validation, test;
  // Folds with per-image values of the metric not paired: in one run only, or not finished in
  // both.
  std::vector<int> folds_only_a, folds_only_b, folds_unfinished;
  bool same_folds = true;  // the paired folds hold the same validation samples in both runs
};
// Throws ConfigError when a run has no per-image values of `metric` (per_image_missing), or
// when the two have no finished fold and no test part with them in common.
PerImageComparison compare_per_image(const RunInfo& a, const RunInfo& b, const std::string& metric);

// Numbers with 4 decimals. csv (long form): run,metric,part,stat,fold,id,value with the stats
// n_images, mean, median, min, max, share_one, share_zero, non_finite, then one `worst` line per
// image (fold is "test" for the test part).
std::string render_per_image_summaries(const std::vector<PerImageSummary>& summaries, CompareFormat format);
// csv (long form): metric,part,stat,value.
std::string render_per_image_paired(const PerImageComparison& comparison, CompareFormat format);

// Numbers with 4 decimals. csv: one header line, then one line per (metric, run) with the
// columns metric,run,status,fold_0..fold_<n-1>,mean,std,n_folds,incomplete_folds[,test].
std::string render_compare(const CompareTable& table, CompareFormat format);

}  // namespace chestlab

// Side-by-side comparison of runs (`chestlab compare`): per fold the value of a metric at
// that fold's best epoch, and mean ± sample std over the finished folds (the run file's
// summary rule, see compute_summary). Folds not finished are shown but marked and left out
// of mean ± std.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chestlab/runfile.h"

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
  int fold_columns = 0;   // highest fold index of any run + 1
  bool has_test = false;  // some run has /test
  std::vector<CompareBlock> blocks;
};

// One block for `metric`, or one per metric of any run (in order of first appearance) when
// it is nullopt. Throws ConfigError when `metric` is in no run, naming those available.
CompareTable build_compare_table(const std::vector<RunInfo>& runs, const std::optional<std::string>& metric);

// Numbers with 4 decimals. csv: one header line, then one line per (metric, run) with the
// columns metric,run,status,fold_0..fold_<n-1>,mean,std,n_folds,incomplete_folds[,test].
std::string render_compare(const CompareTable& table, CompareFormat format);

}  // namespace chestlab

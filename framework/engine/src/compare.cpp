// Tables for `chestlab compare`.
#include "chestlab/engine/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "chestlab/errors.h"
#include "text_grid.h"

namespace chestlab {

CompareFormat parse_compare_format(const std::string& text) {
  if (text == "table") return CompareFormat::Table;
  if (text == "csv") return CompareFormat::Csv;
  if (text == "markdown") return CompareFormat::Markdown;
  throw ConfigError("--format '" + text + "' is not one of: table, csv, markdown");
}

namespace {

constexpr const char* kLegend =
    "* fold not finished (pending, running, interrupted or failed): left out of mean ± std";

std::vector<std::string> metrics_of(const std::vector<RunInfo>& runs) {
  std::vector<std::string> order;
  std::set<std::string> seen;
  auto add = [&](const std::string& m) {
    if (seen.insert(m).second) order.push_back(m);
  };
  for (const RunInfo& run : runs)
    for (const FoldInfo& fold : run.folds)
      for (const std::string& m : fold.metric_names) add(m);
  for (const RunInfo& run : runs)
    for (const MetricValue& t : run.test) add(t.metric);
  return order;
}

// Mean ± std of `metric` over the finished folds of each repeat.
std::vector<RepeatSummary> repeat_summaries(const RunInfo& run, const std::string& metric, int repeat_columns) {
  std::vector<RepeatSummary> out(static_cast<std::size_t>(repeat_columns));
  for (int r = 0; r < repeat_columns; ++r) {
    std::vector<FoldInfo> folds;
    for (const FoldInfo& fold : run.folds)
      if (fold.repeat == r) folds.push_back(fold);
    for (const SummaryRow& s : compute_summary(folds))
      if (s.metric == metric) out[static_cast<std::size_t>(r)] = {s.mean, s.std, s.n_folds};
  }
  return out;
}

CompareRow build_row(const RunInfo& run, const std::string& metric, int fold_columns, int repeat_columns) {
  CompareRow row;
  row.run = run.meta.experiment + "/" + run.meta.run_id;
  row.status = run.status;
  row.folds.resize(static_cast<std::size_t>(fold_columns));
  for (const FoldInfo& fold : run.folds) {
    CompareCell& cell = row.folds[static_cast<std::size_t>(fold.index)];
    cell.exists = true;
    cell.status = fold.status;
    cell.value = fold.best_metric(metric);
  }
  for (const SummaryRow& s : compute_summary(run.folds)) {
    if (s.metric != metric) continue;
    row.mean = s.mean;
    row.std = s.std;
    row.n_folds = s.n_folds;
  }
  row.repeats = repeat_summaries(run, metric, repeat_columns);
  for (const MetricValue& t : run.test)
    if (t.metric == metric) row.test = t.value;
  return row;
}

std::string number(double v) { return fmt::format("{:.4f}", v); }

bool marked(const CompareCell& cell) { return cell.exists && cell.value && !is_finished(cell.status); }

// A fold's value, "*" when the fold is not finished; the fold's status when it has no value.
std::string cell_text(const CompareCell& cell) {
  if (!cell.exists) return "-";
  if (!cell.value) return is_finished(cell.status) ? "-" : to_string(cell.status);
  return number(*cell.value) + (is_finished(cell.status) ? "" : "*");
}

std::string mean_text(double mean, double std, std::int64_t n_folds) {
  return n_folds > 0 ? number(mean) + " ± " + number(std) : "-";
}
std::string mean_text(const CompareRow& row) { return mean_text(row.mean, row.std, row.n_folds); }

bool any_marked(const CompareTable& table) {
  for (const CompareBlock& b : table.blocks)
    for (const CompareRow& r : b.rows)
      for (const CompareCell& c : r.folds)
        if (marked(c)) return true;
  return false;
}

using text::Grid;
using text::csv_field;
using text::join;
using text::markdown_escape;
using text::render_aligned;

// Header and one line per run: run, status, fold 0.., [repeat 0.., ]mean ± std[, test].
Grid block_grid(const CompareTable& table, const CompareBlock& block) {
  Grid grid;
  std::vector<std::string> header{"run"};
  for (const std::string& p : table.param_columns) header.push_back(p);
  header.push_back("status");
  for (int k = 0; k < table.fold_columns; ++k) header.push_back(fmt::format("fold {}", k));
  for (int r = 0; r < table.repeat_columns; ++r) header.push_back(fmt::format("repeat {}", r));
  header.push_back("mean ± std");
  if (table.has_test) header.push_back("test");
  grid.push_back(header);
  for (const CompareRow& row : block.rows) {
    std::vector<std::string> line{row.run};
    for (const std::string& p : row.params) line.push_back(p);
    line.push_back(to_string(row.status));
    for (const CompareCell& cell : row.folds) line.push_back(cell_text(cell));
    for (const RepeatSummary& r : row.repeats) line.push_back(mean_text(r.mean, r.std, r.n_folds));
    line.push_back(mean_text(row));
    if (table.has_test) line.push_back(row.test ? number(*row.test) : "-");
    grid.push_back(line);
  }
  return grid;
}

std::string render_table(const CompareTable& table) {
  std::string out;
  for (std::size_t b = 0; b < table.blocks.size(); ++b) {
    if (b > 0) out += "\n";
    out += "metric: " + table.blocks[b].metric + "\n";
    out += render_aligned(block_grid(table, table.blocks[b]), 2 + table.param_columns.size());
  }
  if (any_marked(table)) out += std::string("\n") + kLegend + "\n";
  return out;
}

std::string render_markdown(const CompareTable& table) {
  std::string out;
  for (std::size_t b = 0; b < table.blocks.size(); ++b) {
    if (b > 0) out += "\n";
    out += "### " + markdown_escape(table.blocks[b].metric) + "\n\n";
    out += text::render_markdown(block_grid(table, table.blocks[b]), 2 + table.param_columns.size());
  }
  if (any_marked(table)) out += "\n\\" + std::string(kLegend) + "\n";
  return out;
}

std::vector<std::string> csv_line(const CompareTable& table, const CompareBlock& block, const CompareRow& row) {
  std::vector<std::string> line{csv_field(block.metric), csv_field(row.run)};
  for (const std::string& p : row.params) line.push_back(csv_field(p));
  line.push_back(to_string(row.status));
  std::vector<std::string> incomplete;
  for (std::size_t k = 0; k < row.folds.size(); ++k) {
    const CompareCell& cell = row.folds[k];
    line.push_back(cell.exists && cell.value ? number(*cell.value) : "");
    if (cell.exists && !is_finished(cell.status)) incomplete.push_back(std::to_string(k));
  }
  for (const RepeatSummary& r : row.repeats) {
    line.push_back(r.n_folds > 0 ? number(r.mean) : "");
    line.push_back(r.n_folds > 0 ? number(r.std) : "");
  }
  line.push_back(row.n_folds > 0 ? number(row.mean) : "");
  line.push_back(row.n_folds > 0 ? number(row.std) : "");
  line.push_back(std::to_string(row.n_folds));
  line.push_back(join(incomplete, ";"));
  if (table.has_test) line.push_back(row.test ? number(*row.test) : "");
  return line;
}

std::string render_csv(const CompareTable& table) {
  std::vector<std::string> header{"metric", "run"};
  for (const std::string& p : table.param_columns) header.push_back(csv_field(p));
  header.push_back("status");
  for (int k = 0; k < table.fold_columns; ++k) header.push_back(fmt::format("fold_{}", k));
  for (int r = 0; r < table.repeat_columns; ++r) {
    header.push_back(fmt::format("repeat_{}_mean", r));
    header.push_back(fmt::format("repeat_{}_std", r));
  }
  for (const char* h : {"mean", "std", "n_folds", "incomplete_folds"}) header.push_back(h);
  if (table.has_test) header.push_back("test");
  std::string out = join(header, ",") + "\n";
  for (const CompareBlock& block : table.blocks)
    for (const CompareRow& row : block.rows) out += join(csv_line(table, block, row), ",") + "\n";
  return out;
}

}  // namespace

CompareTable build_compare_table(const std::vector<RunInfo>& runs, const std::optional<std::string>& metric) {
  CompareOptions options;
  if (metric) options.metrics = {*metric};
  return build_compare_table(runs, options);
}

CompareTable build_compare_table(const std::vector<RunInfo>& runs, const CompareOptions& options) {
  std::vector<std::string> available = metrics_of(runs);
  auto check = [&](const std::string& metric, const char* option) {
    if (std::find(available.begin(), available.end(), metric) == available.end())
      throw ConfigError(fmt::format("{} '{}' is in none of the runs; available: {}", option, metric,
                                    available.empty() ? "(none)" : join(available, ", ")));
  };
  std::vector<std::string> chosen = available;
  if (!options.metrics.empty()) {
    for (const std::string& m : options.metrics) check(m, "--metric");
    chosen = options.metrics;
  }
  if (options.sort_by) check(*options.sort_by, "--sort");
  CompareTable table;
  table.param_columns = options.param_columns;
  for (const RunInfo& run : runs) {
    for (const FoldInfo& fold : run.folds) {
      table.fold_columns = std::max(table.fold_columns, fold.index + 1);
      if (fold.repeat > 0) table.repeat_columns = std::max(table.repeat_columns, fold.repeat + 1);
    }
    table.has_test = table.has_test || !run.test.empty();
  }
  // Row order: as given, or best first by the sort metric's mean (runs without one last).
  std::vector<std::size_t> order(runs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (options.sort_by) {
    std::vector<CompareRow> key;
    for (const RunInfo& run : runs)
      key.push_back(build_row(run, *options.sort_by, table.fold_columns, table.repeat_columns));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
      const bool hx = key[x].n_folds > 0, hy = key[y].n_folds > 0;
      if (hx != hy) return hx;
      if (!hx) return false;
      const bool maximize = metric_maximized(runs[x], *options.sort_by);
      return maximize ? key[x].mean > key[y].mean : key[x].mean < key[y].mean;
    });
  }
  for (const std::string& m : chosen) {
    CompareBlock block{m, {}};
    for (std::size_t i : order) {
      CompareRow row = build_row(runs[i], m, table.fold_columns, table.repeat_columns);
      if (i < options.params.size()) row.params = options.params[i];
      row.params.resize(table.param_columns.size());
      for (std::string& p : row.params)
        if (p.empty()) p = "-";
      block.rows.push_back(std::move(row));
    }
    table.blocks.push_back(std::move(block));
  }
  return table;
}

std::string render_compare(const CompareTable& table, CompareFormat format) {
  switch (format) {
    case CompareFormat::Csv: return render_csv(table);
    case CompareFormat::Markdown: return render_markdown(table);
    case CompareFormat::Table: break;
  }
  return render_table(table);
}

}  // namespace chestlab

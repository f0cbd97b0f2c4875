// Learning curves of a run file (see curves.h).
#include "chestlab/report/curves.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <filesystem>

#include "chestlab/errors.h"

namespace fs = std::filesystem;

namespace chestlab {
namespace {

std::string file_safe(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return out.empty() ? "_" : out;
}

std::string run_title(const RunInfo& run) { return fmt::format("{}/{}", run.meta.experiment, run.meta.run_id); }

plot::LineChart loss_chart(const RunInfo& run) {
  plot::LineChart chart;
  chart.title = fmt::format("Loss: {}", run_title(run));
  chart.x_label = "epoch";
  chart.x_integer = true;
  chart.y_label = "loss (solid: validation, dashed: training)";
  for (const FoldInfo& fold : run.folds) {
    if (fold.history.empty()) continue;
    plot::LineSeries train, val;
    train.label = fmt::format("fold {} train", fold.index);
    val.label = fmt::format("fold {} val", fold.index);
    train.color = val.color = plot::palette(static_cast<std::size_t>(fold.index));
    train.dashed = true;
    for (const HistoryRow& row : fold.history) {
      train.x.push_back(static_cast<double>(row.epoch));
      train.y.push_back(row.train_loss);
      val.x.push_back(static_cast<double>(row.epoch));
      val.y.push_back(row.val_loss);
    }
    chart.series.push_back(std::move(train));
    chart.series.push_back(std::move(val));
  }
  return chart;
}

plot::LineChart metric_chart(const RunInfo& run, const std::string& metric) {
  plot::LineChart chart;
  const bool monitor = metric == run.meta.monitor;
  chart.title = fmt::format("{}{}: {}", metric, monitor ? fmt::format(" (monitor, {})", to_string(run.meta.monitor_mode)) : "",
                            run_title(run));
  chart.x_label = "epoch";
  chart.x_integer = true;
  chart.y_label = metric + " (validation; dot: best epoch)";
  chart.legend = run.meta.monitor_mode == MonitorMode::Max ? plot::Legend::BottomRight : plot::Legend::TopRight;
  for (const FoldInfo& fold : run.folds) {
    const auto column = std::find(fold.metric_names.begin(), fold.metric_names.end(), metric);
    if (fold.history.empty() || column == fold.metric_names.end()) continue;
    const std::size_t m = static_cast<std::size_t>(column - fold.metric_names.begin());
    plot::LineSeries s;
    s.label = fmt::format("fold {}", fold.index);
    s.color = plot::palette(static_cast<std::size_t>(fold.index));
    for (const HistoryRow& row : fold.history) {
      s.x.push_back(static_cast<double>(row.epoch));
      s.y.push_back(m < row.metrics.size() ? row.metrics[m] : std::numeric_limits<double>::quiet_NaN());
    }
    chart.series.push_back(std::move(s));
    if (const HistoryRow* best = fold.row_for_epoch(fold.best_epoch); best && m < best->metrics.size()) {
      plot::LineSeries dot;  // one point: drawn as a marker, kept out of the legend
      dot.color = plot::palette(static_cast<std::size_t>(fold.index));
      dot.x = {static_cast<double>(best->epoch)};
      dot.y = {best->metrics[m]};
      dot.line_width = 3;
      chart.series.push_back(std::move(dot));
    }
  }
  return chart;
}

}  // namespace

std::vector<CurveChart> learning_curves(const RunInfo& run, bool all_metrics) {
  std::vector<CurveChart> out;
  out.push_back({"loss", loss_chart(run)});
  std::vector<std::string> metrics;
  if (!run.meta.monitor.empty()) metrics.push_back(run.meta.monitor);
  if (all_metrics)
    for (const FoldInfo& fold : run.folds)
      for (const std::string& m : fold.metric_names)
        if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
  for (const std::string& m : metrics) out.push_back({m, metric_chart(run, m)});
  return out;
}

std::vector<std::string> write_learning_curves(const RunInfo& run, const std::string& dir, const std::string& prefix,
                                               plot::ImageFormat format, bool all_metrics, plot::Size size) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(dir, "cannot create the folder: " + ec.message());
  std::vector<std::string> written;
  for (const CurveChart& c : learning_curves(run, all_metrics)) {
    const std::string path =
        (fs::path(dir) / (prefix + file_safe(c.name) + (format == plot::ImageFormat::Png ? ".png" : ".svg"))).string();
    plot::save_chart(c.chart, path, size);
    written.push_back(path);
  }
  return written;
}

}  // namespace chestlab

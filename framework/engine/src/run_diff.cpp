#include "chestlab/engine/run_diff.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

namespace chestlab {

namespace {

std::string number(double v) { return fmt::format("{:.17g}", v); }

bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

std::optional<RunDifference> differ(std::string field, const std::string& a, const std::string& b) {
  if (a == b) return std::nullopt;
  return RunDifference{std::move(field), a, b};
}

std::optional<RunDifference> differ_number(std::string field, double a, double b) {
  if (same(a, b)) return std::nullopt;
  return RunDifference{std::move(field), number(a), number(b)};
}

std::string folds_text(const RunInfo& run) {
  std::string text;
  for (const auto& f : run.folds) text += (text.empty() ? "" : ",") + std::to_string(f.index);
  return "[" + text + "]";
}

std::optional<RunDifference> compare_ids(const std::string& field, const std::vector<std::string>& a,
                                         const std::vector<std::string>& b) {
  if (a.size() != b.size()) return RunDifference{field + " count", std::to_string(a.size()), std::to_string(b.size())};
  for (std::size_t i = 0; i < a.size(); ++i)
    if (auto d = differ(fmt::format("{}[{}]", field, i), a[i], b[i])) return d;
  return std::nullopt;
}

std::optional<RunDifference> compare_fold(const FoldInfo& a, const FoldInfo& b) {
  const std::string f = fmt::format("fold {}", a.index);
  if (auto d = differ(f + " status", to_string(a.status), to_string(b.status))) return d;
  if (auto d = differ(f + " error", a.error, b.error)) return d;
  if (auto d = differ(f + " metric names", fmt::format("{}", fmt::join(a.metric_names, ",")),
                      fmt::format("{}", fmt::join(b.metric_names, ","))))
    return d;
  if (auto d = differ(f + " epochs recorded", std::to_string(a.history.size()), std::to_string(b.history.size())))
    return d;
  for (std::size_t e = 0; e < a.history.size(); ++e) {
    const HistoryRow &x = a.history[e], &y = b.history[e];
    const std::string row = fmt::format("{} epoch {}", f, x.epoch);
    if (auto d = differ(fmt::format("{} row {} epoch", f, e), std::to_string(x.epoch), std::to_string(y.epoch)))
      return d;
    if (auto d = differ_number(row + " lr", x.lr, y.lr)) return d;
    if (auto d = differ_number(row + " train_loss", x.train_loss, y.train_loss)) return d;
    if (auto d = differ_number(row + " val_loss", x.val_loss, y.val_loss)) return d;
    for (std::size_t m = 0; m < x.metrics.size() && m < y.metrics.size(); ++m) {
      const std::string name = m < a.metric_names.size() ? a.metric_names[m] : fmt::format("metric {}", m);
      if (auto d = differ_number(row + " " + name, x.metrics[m], y.metrics[m])) return d;
    }
  }
  if (auto d = differ(f + " best epoch", std::to_string(a.best_epoch), std::to_string(b.best_epoch))) return d;
  if (auto d = differ_number(f + " best value", a.best_value, b.best_value)) return d;
  if (auto d = compare_ids(f + " train ids", a.train_ids, b.train_ids)) return d;
  if (auto d = compare_ids(f + " validation ids", a.val_ids, b.val_ids)) return d;
  if (auto d = differ(f + " weight arrays", std::to_string(a.weights.size()), std::to_string(b.weights.size())))
    return d;
  for (std::size_t w = 0; w < a.weights.size(); ++w) {
    const NamedArray &x = a.weights[w], &y = b.weights[w];
    if (auto d = differ(fmt::format("{} weights[{}] name", f, w), x.name, y.name)) return d;
    if (auto d = differ(fmt::format("{} weights {} shape", f, x.name), fmt::format("[{}]", fmt::join(x.shape, ",")),
                        fmt::format("[{}]", fmt::join(y.shape, ","))))
      return d;
    if (x.values.empty() || y.values.empty()) continue;  // read without weights
    for (std::size_t i = 0; i < x.values.size() && i < y.values.size(); ++i)
      if (!same(x.values[i], y.values[i]))
        return RunDifference{fmt::format("{} weights {}[{}]", f, x.name, i), number(x.values[i]), number(y.values[i])};
  }
  return std::nullopt;
}

}  // namespace

std::string RunDifference::describe() const {
  return fmt::format("{}: {} (original) vs {} (rerun)", field, original, rerun);
}

std::optional<RunDifference> first_difference(const RunInfo& original, const RunInfo& rerun) {
  if (auto d = differ("config hash", original.meta.config_hash, rerun.meta.config_hash)) return d;
  if (auto d = differ("folds", folds_text(original), folds_text(rerun))) return d;
  for (std::size_t k = 0; k < original.folds.size(); ++k)
    if (auto d = compare_fold(original.folds[k], rerun.folds[k])) return d;
  if (auto d = differ("test values", std::to_string(original.test.size()), std::to_string(rerun.test.size()))) return d;
  for (std::size_t i = 0; i < original.test.size(); ++i) {
    if (auto d = differ(fmt::format("test[{}] metric", i), original.test[i].metric, rerun.test[i].metric)) return d;
    if (auto d = differ_number("test " + original.test[i].metric, original.test[i].value, rerun.test[i].value)) return d;
  }
  return std::nullopt;
}

}  // namespace chestlab

// `chestlab compare` over a sweep: parameter values out of the runs' recorded configurations,
// and the paired comparison of two runs fold by fold (see compare.h).
#include <boost/math/distributions/students_t.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "config_internal.h"

namespace chestlab {

using config_detail::node_to_toml;

namespace {

std::optional<toml::table> parse_config(const std::string& config_toml) {
  try {
    return toml::parse(std::string_view(config_toml));
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

// Every leaf of a config as (path, TOML text): tables and arrays of tables are descended into
// ("metrics.0.threshold"), any other value is a leaf.
void leaves(const toml::node& node, const std::string& path, std::vector<std::pair<std::string, std::string>>& out) {
  if (const toml::table* t = node.as_table()) {
    for (auto&& [k, v] : *t) leaves(v, path.empty() ? std::string(k.str()) : path + "." + std::string(k.str()), out);
  } else if (const toml::array* a = node.as_array(); a && !a->empty() && a->is_array_of_tables()) {
    for (std::size_t i = 0; i < a->size(); ++i) leaves((*a)[i], path + "." + std::to_string(i), out);
  } else {
    out.emplace_back(path, node_to_toml(node));
  }
}

std::string number(double v) { return fmt::format("{:.4f}", v); }

}  // namespace

std::string config_value(const std::string& config_toml, const std::string& path) {
  auto root = parse_config(config_toml);
  if (!root) return "";
  const toml::node* node = &*root;
  std::size_t start = 0;
  while (node && start <= path.size()) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (const toml::table* t = node->as_table()) {
      node = t->get(key);
    } else if (const toml::array* a = node->as_array()) {
      const bool index = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
      node = index && std::stoul(key) < a->size() ? a->get(std::stoul(key)) : nullptr;
    } else {
      node = nullptr;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node ? node_to_toml(*node) : "";
}

std::vector<std::string> differing_config_paths(const std::vector<RunInfo>& runs) {
  std::vector<std::string> order;
  std::map<std::string, std::set<std::string>> values;
  for (const RunInfo& run : runs) {
    std::vector<std::pair<std::string, std::string>> flat;
    if (auto root = parse_config(run.config_toml)) leaves(*root, "", flat);
    for (const auto& [path, text] : flat) {
      if (!values.count(path)) order.push_back(path);
      values[path].insert(text);
    }
  }
  std::vector<std::string> out;
  for (const std::string& path : order) {
    if (path == "experiment.output" || is_output_only_key(path)) continue;  // not what a run computes
    // A key some run lacks also differs.
    std::size_t present = 0;
    for (const RunInfo& run : runs) present += config_value(run.config_toml, path).empty() ? 0 : 1;
    if (values[path].size() > 1 || present != runs.size()) out.push_back(path);
  }
  return out;
}

bool metric_maximized(const RunInfo& run, const std::string& metric) {
  if (run.meta.monitor == metric) return run.meta.monitor_mode == MonitorMode::Max;
  if (auto root = parse_config(run.config_toml))
    if (const toml::array* metrics = (*root)["metrics"].as_array())
      for (const toml::node& m : *metrics)
        if (const toml::table* t = m.as_table())
          if ((*t)["name"].value_or(std::string()) == metric) return (*t)["mode"].value_or(std::string("max")) != "min";
  return true;
}

void paired_t_test(const std::vector<double>& diffs, std::optional<double>& t, double& p) {
  const double n = static_cast<double>(diffs.size());
  double mean = 0;
  for (double d : diffs) mean += d;
  mean /= n;
  double ss = 0;
  for (double d : diffs) ss += (d - mean) * (d - mean);
  const double sd = std::sqrt(ss / (n - 1));
  t.reset();
  if (!(sd > 0)) {
    p = mean == 0 ? 1.0 : 0.0;  // identical differences: no spread to test against
    return;
  }
  t = mean / (sd / std::sqrt(n));
  boost::math::students_t dist(n - 1);
  p = 2 * boost::math::cdf(boost::math::complement(dist, std::fabs(*t)));
}

PairedComparison compare_paired(const RunInfo& a, const RunInfo& b, const std::string& metric) {
  PairedComparison out;
  out.metric = metric;
  out.run_a = a.meta.experiment + "/" + a.meta.run_id;
  out.run_b = b.meta.experiment + "/" + b.meta.run_id;
  for (const FoldInfo& fa : a.folds) {
    const FoldInfo* fb = b.fold(fa.index);
    if (!fb || !is_finished(fa.status) || !is_finished(fb->status)) continue;
    auto va = fa.best_metric(metric), vb = fb->best_metric(metric);
    if (!va || !vb) continue;
    if (fa.val_ids != fb->val_ids) out.same_folds = false;
    out.folds.push_back({fa.index, *va, *vb, *va - *vb});
  }
  if (out.folds.empty())
    throw ConfigError(fmt::format("--paired: {} and {} have no finished fold in common with a value of '{}'",
                                  out.run_a, out.run_b, metric));
  std::vector<double> diffs;
  for (const PairedFold& f : out.folds) diffs.push_back(f.diff);
  const double n = static_cast<double>(diffs.size());
  for (double d : diffs) out.mean_diff += d / n;
  if (diffs.size() > 1) {
    double ss = 0;
    for (double d : diffs) ss += (d - out.mean_diff) * (d - out.mean_diff);
    out.std_diff = std::sqrt(ss / (n - 1));
  }
  out.df = static_cast<int>(diffs.size()) - 1;
  if (diffs.size() >= 5) {
    double p = 1;
    paired_t_test(diffs, out.t, p);
    out.p = p;
  }
  return out;
}

std::string render_paired(const PairedComparison& c, CompareFormat format) {
  if (format == CompareFormat::Csv) {
    std::string out = "metric,fold,a,b,a_minus_b\n";
    for (const PairedFold& f : c.folds)
      out += fmt::format("{},{},{},{},{}\n", c.metric, f.fold, number(f.a), number(f.b), number(f.diff));
    out += fmt::format("{},mean,,,{}\n{},std,,,{}\n", c.metric, number(c.mean_diff), c.metric, number(c.std_diff));
    if (c.p) out += fmt::format("{},t,,,{}\n{},p,,,{}\n", c.metric, c.t ? number(*c.t) : "", c.metric,
                                fmt::format("{:.4g}", *c.p));
    return out;
  }
  const bool md = format == CompareFormat::Markdown;
  std::string out = fmt::format("{}paired comparison of {}: A = {}, B = {}\n{}", md ? "### " : "", c.metric, c.run_a,
                                c.run_b, md ? "\n| fold | A | B | A - B |\n| ---: | ---: | ---: | ---: |\n"
                                            : "fold         A        B     A - B\n");
  for (const PairedFold& f : c.folds)
    out += md ? fmt::format("| {} | {} | {} | {:+.4f} |\n", f.fold, number(f.a), number(f.b), f.diff)
              : fmt::format("{:>4}  {:>7}  {:>7}  {:>+8.4f}\n", f.fold, number(f.a), number(f.b), f.diff);
  out += fmt::format("\nmean difference {:+.4f} ± {:.4f} (sample std) over {} fold(s)\n", c.mean_diff, c.std_diff,
                     c.folds.size());
  if (c.p) {
    out += fmt::format("paired t-test (two-sided): t = {}, df = {}, p = {:.4g}\n",
                       c.t ? fmt::format("{:.4f}", *c.t) : std::string("n/a (identical differences)"), c.df, *c.p);
  } else {
    out += fmt::format("no paired t-test: it needs at least 5 folds finished in both runs ({} here)\n",
                       c.folds.size());
  }
  if (!c.same_folds)
    out += "warning: some folds hold different validation samples in the two runs; a paired comparison assumes "
           "the same folds\n";
  return out;
}

}  // namespace chestlab

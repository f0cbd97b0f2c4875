// chestlab compare RUN.h5|SWEEP_DIR|sweep.toml... [--metric M]... [--sort M] [--paired A B]
//                  [--per-image [--worst N]] [--format table|csv|markdown]
#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "chestlab/engine/runfile.h"
#include "chestlab/engine/sweep.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab compare RUN.h5|SWEEP_DIR|sweep.toml... [--metric M]... [--sort M]\n"
    "                        [--paired RUN_A RUN_B] [--per-image [--worst N]]\n"
    "                        [--format table|csv|markdown]\n\n"
    "Shows, run by run, each fold's value of a metric at that fold's best epoch (chosen by the\n"
    "run's monitor metric) and mean ± sample std over the finished folds. Folds not finished\n"
    "are marked with * and left out of mean ± std. Without --metric, one block per metric.\n"
    "Holdout test values appear in a 'test' column when a run has them.\n"
    "Given a sweep's folder (results/<experiment>) or its sweep.toml: every run of the sweep,\n"
    "the swept parameters as columns, best first by the monitor metric (or --sort).\n"
    "--paired A B (run ids, unique id prefixes or files): fold-by-fold differences A - B and,\n"
    "with 5 or more folds finished in both, a two-sided paired t-test.\n"
    "--per-image: the per-image values a run file keeps for the metrics that offer them (each\n"
    "fold's validation at its best epoch, and the holdout test), over the finished folds. Alone:\n"
    "per run and metric the number of images, mean, median, min, max, the share of images at\n"
    "exactly 1 and at exactly 0, and the --worst N images (default 5; fold, id, value). With\n"
    "--paired A B: instead of the fold-level comparison, the images paired by (fold, id) over\n"
    "the folds finished in both (and the test part when both have one): mean of A and of B,\n"
    "mean A - B, how many images A / B does better on or ties, the images in only one run, and\n"
    "a two-sided Wilcoxon signed-rank test (normal approximation, zero differences dropped,\n"
    "tie-corrected). Without --metric: every metric with per-image values (in both runs, with\n"
    "--paired).\n\n";

int usage_error(const std::string& message) {
  std::cerr << "error: " << message << "\n"
            << "usage: chestlab compare RUN.h5|SWEEP_DIR... [--metric M]... [--sort M] [--paired A B]"
               " (see `chestlab compare --help`)\n";
  return kExitUsage;
}

// `--per-image`: the summary of every run, or with --paired the comparison image by image.
// A run without per-image values of a metric asked for is named (with the metrics that have
// them); exit 2 when nothing is left to show.
int per_image_output(const std::vector<RunInfo>& runs, const std::vector<std::string>& metrics,
                     const po::variables_map& vm, const std::function<const RunInfo&(const std::string&)>& find,
                     int worst, CompareFormat format) {
  if (vm.count("paired")) {
    const auto pair = vm["paired"].as<std::vector<std::string>>();
    if (pair.size() != 2) return usage_error("--paired takes two runs: RUN_A RUN_B");
    const RunInfo& a = find(pair[0]);
    const RunInfo& b = find(pair[1]);
    std::vector<std::string> chosen = metrics;
    if (chosen.empty()) {
      const std::vector<std::string> in_b = per_image_metrics(b);
      for (const std::string& m : per_image_metrics(a))
        if (std::find(in_b.begin(), in_b.end(), m) != in_b.end()) chosen.push_back(m);
      if (chosen.empty()) {
        const auto list = [](const std::vector<std::string>& ms) {
          std::string out;
          for (const std::string& m : ms) out += (out.empty() ? "" : ", ") + m;
          return out.empty() ? std::string("none") : out;
        };
        throw ConfigError("--per-image: " + a.meta.experiment + "/" + a.meta.run_id + " and " + b.meta.experiment +
                          "/" + b.meta.run_id + " have no metric with per-image values in common (A: " +
                          list(per_image_metrics(a)) + "; B: " + list(in_b) + ")");
      }
    }
    // Every comparison first, so that an error prints nothing half-way.
    std::vector<PerImageComparison> done;
    for (const std::string& m : chosen) done.push_back(compare_per_image(a, b, m));
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (i && format != CompareFormat::Csv) std::cout << "\n";
      std::string text = render_per_image_paired(done[i], format);
      if (i && format == CompareFormat::Csv) text = text.substr(text.find('\n') + 1);  // one header
      std::cout << text;
    }
    return kExitOk;
  }
  std::vector<PerImageSummary> summaries;
  std::vector<std::string> missing;
  for (const RunInfo& run : runs) {
    const std::vector<std::string> have = per_image_metrics(run);
    if (metrics.empty()) {
      if (have.empty()) missing.push_back(per_image_missing(run, ""));
      for (PerImageSummary& s : summarize_per_image(run, worst)) summaries.push_back(std::move(s));
      continue;
    }
    for (const std::string& m : metrics) {
      if (std::find(have.begin(), have.end(), m) == have.end()) {
        missing.push_back(per_image_missing(run, m));
        continue;
      }
      for (PerImagePart part : {PerImagePart::Validation, PerImagePart::Test}) {
        try {
          summaries.push_back(summarize_per_image(run, m, part, worst));
        } catch (const ConfigError&) {
          // This part has none of the metric; the other one has.
        }
      }
    }
  }
  if (summaries.empty()) {
    for (std::size_t i = 0; i + 1 < missing.size(); ++i) std::cerr << "error: " << missing[i] << "\n";
    throw ConfigError(missing.empty() ? std::string("--per-image: no runs given") : missing.back());
  }
  for (const std::string& m : missing) std::cerr << "note: " << m << "\n";
  std::cout << render_per_image_summaries(summaries, format);
  return kExitOk;
}

int run_compare(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "metric", po::value<std::vector<std::string>>()->composing(), "compare only this metric (repeatable)")(
      "sort", po::value<std::string>(), "rows best first by this metric's mean")(
      "paired", po::value<std::vector<std::string>>()->multitoken(), "RUN_A RUN_B: fold-by-fold differences, t-test")(
      "per-image", "per-image values: a summary per run, or with --paired a comparison image by image")(
      "worst", po::value<int>()->default_value(5), "with --per-image: list the N worst images per metric")(
      "format", po::value<std::string>()->default_value("table"), "table | csv | markdown");
  po::options_description hidden;
  hidden.add_options()("runs", po::value<std::vector<std::string>>(), "run files");
  po::positional_options_description positional;
  positional.add("runs", -1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("runs")) return usage_error("no run files given");

  CompareFormat format;
  std::vector<std::string> metrics;
  try {
    format = parse_compare_format(vm["format"].as<std::string>());
  } catch (const ConfigError& e) {
    return usage_error(e.what());
  }
  if (vm.count("metric"))
    for (const std::string& m : vm["metric"].as<std::vector<std::string>>()) {
      std::stringstream list(m);
      for (std::string one; std::getline(list, one, ',');)
        if (!one.empty()) metrics.push_back(one);
    }

  const bool per_image = vm.count("per-image") > 0;
  if (!per_image && !vm["worst"].defaulted()) return usage_error("--worst goes with --per-image");
  if (per_image && vm.count("sort")) return usage_error("--sort does not apply to --per-image");
  const int worst = vm["worst"].as<int>();
  if (worst < 0) return usage_error("--worst takes a number of images, 0 or more");

  // Run files as given; a sweep's folder or manifest brings its runs and swept parameters.
  std::vector<RunInfo> runs;
  CompareOptions table_options;
  bool any_sweep = false;
  std::vector<std::vector<std::string>> sweep_params;
  std::vector<std::string> columns;
  for (const std::string& path : vm["runs"].as<std::vector<std::string>>()) {
    std::error_code ec;
    const bool dir = std::filesystem::is_directory(path, ec);
    const bool manifest = !dir && std::filesystem::path(path).extension() == ".toml";
    if (!dir && !manifest && !std::filesystem::is_regular_file(path, ec)) {
      std::cerr << "error: " << path << ": no such file\n";
      return kExitUsage;
    }
    try {
      if (dir || manifest) {
        SweepResults sweep = load_sweep_results(path);
        any_sweep = true;
        for (const std::string& c : sweep.param_columns)
          if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
        for (std::size_t i = 0; i < sweep.runs.size(); ++i) {
          std::vector<std::string> values;
          for (const std::string& c : columns) {
            auto at = std::find(sweep.param_columns.begin(), sweep.param_columns.end(), c);
            values.push_back(at == sweep.param_columns.end() ? "" : sweep.params[i][at - sweep.param_columns.begin()]);
          }
          sweep_params.push_back(values);
          runs.push_back(std::move(sweep.runs[i]));
        }
      } else {
        runs.push_back(read_run(path, LoadWeights::No));
        sweep_params.emplace_back();
      }
    } catch (const DataError& e) {
      std::cerr << "data error: " << e.what() << "\n";
      return kExitData;
    }
  }
  try {
    auto find = [&](const std::string& key) -> const RunInfo& {
      const RunInfo* found = nullptr;
      for (const RunInfo& r : runs) {
        const bool match = r.path == key || r.meta.run_id == key || r.meta.experiment + "/" + r.meta.run_id == key ||
                           r.meta.run_id.rfind(key, 0) == 0 ||
                           std::filesystem::path(r.path).filename().string() == key;
        if (!match) continue;
        if (found && found != &r && found->meta.run_id != r.meta.run_id)
          throw ConfigError("--paired: '" + key + "' matches more than one run (" + found->meta.run_id + ", " +
                            r.meta.run_id + "); give more of the id");
        found = &r;
      }
      if (!found) throw ConfigError("--paired: no run '" + key + "' among the runs given");
      return *found;
    };
    if (per_image) return per_image_output(runs, metrics, vm, find, worst, format);
    if (vm.count("paired")) {
      const auto pair = vm["paired"].as<std::vector<std::string>>();
      if (pair.size() != 2) return usage_error("--paired takes two runs: RUN_A RUN_B");
      const RunInfo& a = find(pair[0]);
      const RunInfo& b = find(pair[1]);
      if (metrics.empty()) metrics = {a.meta.monitor};
      for (std::size_t i = 0; i < metrics.size(); ++i) {
        if (i) std::cout << "\n";
        std::cout << render_paired(compare_paired(a, b, metrics[i]), format);
      }
      return kExitOk;
    }
    table_options.metrics = metrics;
    if (vm.count("sort")) table_options.sort_by = vm["sort"].as<std::string>();
    else if (any_sweep && !runs.empty()) table_options.sort_by = runs.front().meta.monitor;
    if (any_sweep) {
      table_options.param_columns = columns;
      for (auto& values : sweep_params) values.resize(columns.size());
      // Plain run files given next to a sweep: their values from their recorded config.
      for (std::size_t i = 0; i < runs.size(); ++i)
        for (std::size_t c = 0; c < columns.size(); ++c)
          if (sweep_params[i][c].empty()) sweep_params[i][c] = config_value(runs[i].config_toml, columns[c]);
      table_options.params = sweep_params;
    }
    std::cout << render_compare(build_compare_table(runs, table_options), format);
  } catch (const ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}

const Command registration{"compare", "compare run files fold by fold", &run_compare};

}  // namespace
}  // namespace chestlab::app

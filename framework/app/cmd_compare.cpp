// chestlab compare RUN.h5... [--metric M] [--format table|csv|markdown]
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include "chestlab/compare.h"
#include "chestlab/errors.h"
#include "chestlab/runfile.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab compare RUN.h5... [--metric M] [--format table|csv|markdown]\n\n"
    "Shows, run by run, each fold's value of a metric at that fold's best epoch (chosen by the\n"
    "run's monitor metric) and mean ± sample std over the finished folds. Folds not finished\n"
    "are marked with * and left out of mean ± std. Without --metric, one block per metric.\n"
    "Holdout test values appear in a 'test' column when a run has them.\n\n";

int usage_error(const std::string& message) {
  std::cerr << "error: " << message << "\n"
            << "usage: chestlab compare RUN.h5... [--metric M] [--format table|csv|markdown]"
               " (see `chestlab compare --help`)\n";
  return kExitUsage;
}

int run_compare(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "metric", po::value<std::string>(), "compare only this metric")(
      "format", po::value<std::string>()->default_value("table"), "table | csv | markdown");
  po::options_description hidden;
  hidden.add_options()("runs", po::value<std::vector<std::string>>(), "run files");
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("runs", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << options;
    return kExitOk;
  }
  if (!vm.count("runs")) return usage_error("no run files given");

  CompareFormat format;
  std::optional<std::string> metric;
  try {
    format = parse_compare_format(vm["format"].as<std::string>());
  } catch (const ConfigError& e) {
    return usage_error(e.what());
  }
  if (vm.count("metric")) metric = vm["metric"].as<std::string>();

  std::vector<RunInfo> runs;
  for (const std::string& path : vm["runs"].as<std::vector<std::string>>()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      std::cerr << "error: " << path << ": no such file\n";
      return kExitUsage;
    }
    try {
      runs.push_back(read_run(path, LoadWeights::No));
    } catch (const DataError& e) {
      std::cerr << "data error: " << e.what() << "\n";
      return kExitData;
    }
  }
  try {
    std::cout << render_compare(build_compare_table(runs, metric), format);
  } catch (const ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}

const Command registration{"compare", "Compare run files fold by fold", &run_compare};

}  // namespace
}  // namespace chestlab::app

// chestlab curves RUN.h5... --out DIR [--format svg|png] [--all-metrics]: learning curves.
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "chestlab/report/curves.h"
#include "chestlab/errors.h"
#include "chestlab/engine/runfile.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab curves RUN.h5... --out DIR [--format svg|png] [--all-metrics]\n\n"
    "Draws each run's learning curves: training (dashed) and validation (solid) loss per fold\n"
    "against epoch, and the monitored metric per fold with each fold's best epoch marked\n"
    "(--all-metrics: every metric). Writes DIR/<run id>-loss.svg, DIR/<run id>-<metric>.svg.\n\n";

int run_curves(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")("out", po::value<std::string>(), "output folder")(
      "format", po::value<std::string>()->default_value("svg"), "svg | png")(
      "all-metrics", "a chart for every metric, not only the monitor");
  po::options_description hidden;
  hidden.add_options()("runs", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("runs", -1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("runs") || !vm.count("out")) {
    std::cerr << "error: give run files and --out DIR\n\n" << kUsage << options;
    return kExitUsage;
  }
  const std::string format = vm["format"].as<std::string>();
  if (format != "svg" && format != "png") {
    std::cerr << "error: --format must be svg or png, not \"" << format << "\"\n";
    return kExitUsage;
  }
  for (const std::string& path : vm["runs"].as<std::vector<std::string>>()) {
    const RunInfo run = read_run(path, LoadWeights::No);
    const auto files = write_learning_curves(run, vm["out"].as<std::string>(), run.meta.run_id + "-",
                                             format == "png" ? plot::ImageFormat::Png : plot::ImageFormat::Svg,
                                             vm.count("all-metrics") > 0);
    for (const auto& f : files) std::cout << f << "\n";
  }
  return kExitOk;
}

const Command reg{"curves", "draw the learning curves of run files (SVG or PNG)", &run_curves};

}  // namespace
}  // namespace chestlab::app

// chestlab report RESULTS_DIR --out report.html: one self-contained HTML page over run files.
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "chestlab/errors.h"
#include "chestlab/report/report.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab report RESULTS_DIR [--out report.html] [--title T] [--all-metrics]\n\n"
    "Finds every run file (*.h5) under RESULTS_DIR and writes one self-contained HTML page\n"
    "(no external files: styles inline, charts embedded as SVG): an overview table of every\n"
    "metric per run and fold (as `chestlab compare`), then for each run its configuration,\n"
    "a per-fold table of the best epoch's values with mean ± std, holdout test values when\n"
    "the run has them, and its learning curves.\n\n";

int run_report(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "out", po::value<std::string>()->default_value("report.html"), "the HTML file to write")(
      "title", po::value<std::string>()->default_value("chestlab report"), "page title")(
      "all-metrics", "a learning-curve chart for every metric, not only the monitor");
  po::options_description hidden;
  hidden.add_options()("dir", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("dir")) {
    std::cerr << "error: give a results folder\n\n" << kUsage << options;
    return kExitUsage;
  }
  const std::string dir = vm["dir"].as<std::string>();
  ReportOptions o;
  o.title = vm["title"].as<std::string>();
  o.source = dir;
  o.all_metrics = vm.count("all-metrics") > 0;
  const std::vector<RunInfo> runs = collect_runs(dir, o.problems);
  for (const auto& p : o.problems) std::cerr << "warning: left out: " << p << "\n";
  const std::string html = render_report_html(runs, o);
  const std::string out = vm["out"].as<std::string>();
  const fs::path parent = fs::path(out).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  const std::string tmp = out + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file << html;
    file.close();
    if (!file) throw DataError(out, "cannot write the report");
  }
  fs::rename(tmp, out, ec);
  if (ec) throw DataError(out, "cannot write the report: " + ec.message());
  std::cout << fmt::format("{}: {} run{}, {:.0f} kB\n", out, runs.size(), runs.size() == 1 ? "" : "s",
                           html.size() / 1024.0);
  return kExitOk;
}

const Command reg{"report", "write one self-contained HTML report over the run files of a folder", &run_report};

}  // namespace
}  // namespace chestlab::app

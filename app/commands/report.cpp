// chestlab report RESULTS_DIR --out report.html [--watch [SECONDS]]: one self-contained HTML
// page over run files; with --watch, kept up to date while the runs train (framework/report's
// live.h does the work).
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <iostream>

#include "chestlab/errors.h"
#include "chestlab/host/runtime.h"
#include "chestlab/report/live.h"
#include "chestlab/report/report.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab report RESULTS_DIR [--out report.html] [--title T] [--all-metrics]\n"
    "                       [--watch [SECONDS]]\n\n"
    "Finds every run file (*.h5) under RESULTS_DIR and writes one self-contained HTML page\n"
    "(no external files: styles inline, charts embedded as SVG): an overview table of every\n"
    "metric per run and fold (as `chestlab compare`), then for each run its configuration,\n"
    "a per-fold table of the best epoch's values with mean ± std, holdout test values when\n"
    "the run has them, and its learning curves. The page is replaced atomically (a temporary\n"
    "file beside it, renamed over it), so a browser never reads half a page.\n\n"
    "--watch [SECONDS] (default 10) keeps the page up to date: every SECONDS it looks at the run\n"
    "files and rewrites the page when one appeared, went or changed (one line per page). While\n"
    "a run is running (its writer holds `<run>.h5.lock`) the page reloads itself every SECONDS;\n"
    "a run left \"running\" by a killed process is shown as such and does not keep it reloading.\n"
    "A run file that cannot be read keeps its last good content (or is left out), with a warning.\n"
    "Ctrl-C or SIGTERM stops watching (exit 130); the last page written stays.\n"
    "Write `--watch=N` or put RESULTS_DIR first when a folder's name is a number.\n\n";

constexpr const char* kDefaultInterval = "10";

// "--watch 5" as "--watch=5", and a bare "--watch" as "--watch=10": the seconds are optional,
// so only a number right after it is taken (program_options would take any next word).
std::vector<std::string> join_watch_value(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--watch") {
      out.push_back(args[i]);
      continue;
    }
    char* end = nullptr;
    if (i + 1 < args.size() && !args[i + 1].empty() && (std::strtod(args[i + 1].c_str(), &end), *end == '\0'))
      out.push_back("--watch=" + args[++i]);
    else
      out.push_back(std::string("--watch=") + kDefaultInterval);
  }
  return out;
}

// A positive finite number of seconds, at most a day; nullopt otherwise.
std::optional<double> parse_interval(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 86400) return std::nullopt;
  return v;
}

int run_report(const std::vector<std::string>& raw_args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "out", po::value<std::string>()->default_value("report.html"), "the HTML file to write")(
      "title", po::value<std::string>()->default_value("chestlab report"), "page title")(
      "all-metrics", "a learning-curve chart for every metric, not only the monitor")(
      "watch", po::value<std::string>()->implicit_value(kDefaultInterval)->value_name("SECONDS"),
      "rewrite the page when run files change, polling every SECONDS (default 10); live while a run is running");
  po::options_description hidden;
  hidden.add_options()("dir", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(join_watch_value(raw_args), kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("dir")) {
    std::cerr << "error: give a results folder\n\n" << kUsage << options;
    return kExitUsage;
  }
  std::optional<double> interval;
  if (vm.count("watch")) {
    interval = parse_interval(vm["watch"].as<std::string>());
    if (!interval) {
      std::cerr << fmt::format("error: --watch takes a positive number of seconds (at most 86400), not '{}'\n\n",
                               vm["watch"].as<std::string>())
                << kUsage << options;
      return kExitUsage;
    }
  }
  const std::string dir = vm["dir"].as<std::string>();
  const std::string out = vm["out"].as<std::string>();
  ReportOptions o;
  o.title = vm["title"].as<std::string>();
  o.source = dir;
  o.all_metrics = vm.count("all-metrics") > 0;

  if (interval) {
    install_interrupt_handlers();
    std::cout << fmt::format("watching {} every {} s; Ctrl-C stops\n", dir, vm["watch"].as<std::string>()) << std::flush;
    watch_report({dir, out, *interval, o}, [] { return interrupt_requested(); }, std::cout, std::cerr);
    std::cout << fmt::format("stopped; {} is the last page written\n", out);
    return kExitInterrupted;
  }

  RunFolderWatch folder(dir);
  folder.update();
  for (const auto& p : folder.new_problems()) std::cerr << "warning: " << p << "\n";
  o = folder.report_options(o);
  const std::string html = render_report_html(folder.runs(), o);
  write_file_atomically(out, html);
  const std::size_t n = folder.runs().size();
  std::cout << fmt::format("{}: {} run{}, {:.0f} kB\n", out, n, n == 1 ? "" : "s", html.size() / 1024.0);
  return kExitOk;
}

const Command reg{"report", "write one self-contained HTML report over the run files of a folder", &run_report};

}  // namespace
}  // namespace chestlab::app

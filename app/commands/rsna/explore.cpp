// chestlab explore EXP.toml --out DIR: statistics and figures of an RSNA experiment's labels.
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "chestlab/errors.h"
#include "chestlab/paths.h"
#include "chestlab/rsna/explore.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab explore EXP.toml --out DIR [--k N] [--seed S] [--grid N] [--format png|svg]\n"
    "                        [--set section.key=value]... [--plugin-path DIR]...\n\n"
    "Draws what the public RSNA notebooks look at, from the label tables of the experiment's\n"
    "rsna_pneumonia dataset (labels, class_info, headers; no images are read): boxes per\n"
    "image, where boxes lie, box widths and heights and k-means clusters of their sizes,\n"
    "class balance, and age / sex / view position when dataset.headers is set. Writes one\n"
    "figure per statistic and DIR/summary.md with the numbers.\n\n";

int run_explore(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "out", po::value<std::string>(), "folder for the figures and summary.md")(
      "k", po::value<int>()->default_value(5), "k-means clusters of box sizes")(
      "seed", po::value<std::uint64_t>(), "k-means seed (default: the experiment's seed)")(
      "grid", po::value<int>()->default_value(64), "heatmap cells per side")(
      "format", po::value<std::string>()->default_value("png"), "figure format: png | svg")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a value: section.key=value")(
      "plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("experiment", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("experiment") || !vm.count("out")) {
    std::cerr << "error: give an experiment file and --out DIR\n\n" << kUsage << options;
    return kExitUsage;
  }
  const int k = vm["k"].as<int>(), grid = vm["grid"].as<int>();
  if (k < 1 || k > 100 || grid < 1 || grid > 1024) {
    std::cerr << "error: --k must be 1..100 and --grid 1..1024\n";
    return kExitUsage;
  }
  const std::string format = vm["format"].as<std::string>();
  if (format != "png" && format != "svg") {
    std::cerr << "error: --format must be png or svg, not \"" << format << "\"\n";
    return kExitUsage;
  }

  const auto registry = discover_plugins(vm);
  const ExperimentConfig config = load_experiment_arg(vm, *registry);
  if (config.dataset.plugin != "rsna_pneumonia")
    throw ConfigError(fmt::format("{}: explore reads RSNA label tables; dataset.plugin is \"{}\", "
                                  "not \"rsna_pneumonia\"",
                                  config.source_file, config.dataset.plugin));
  const Params& p = config.dataset.params;
  RsnaLabels labels = read_rsna_labels(resolve_path(p.str("labels"), config.base_dir),
                                       resolve_path(p.str("class_info"), config.base_dir),
                                       resolve_path(p.str("headers"), config.base_dir));
  for (const auto& w : labels.warnings) std::cerr << "warning: " << w << "\n";
  const auto limit = static_cast<std::size_t>(p.integer("limit"));
  if (limit > 0 && labels.patients.size() > limit) labels.patients.resize(limit);

  RsnaExploreOptions o;
  o.kmeans_k = k;
  o.grid = grid;
  o.seed = vm.count("seed") ? vm["seed"].as<std::uint64_t>() : static_cast<std::uint64_t>(config.seed);
  o.title = fmt::format("Labels of experiment \"{}\" ({})", config.name, p.str("labels"));
  o.svg = format == "svg";
  const RsnaExploreStats stats = explore_rsna(labels.patients, o);
  const std::string out = vm["out"].as<std::string>();
  const auto files = write_rsna_explore(labels.patients, stats, out, o);
  std::cout << fmt::format("{} patients, {} positive ({:.2f} %), {} boxes; wrote {} files to {}:\n", stats.patients,
                           stats.positive, stats.patients ? 100.0 * stats.positive / stats.patients : 0.0,
                           stats.boxes, files.size(), out);
  for (const auto& f : files) std::cout << "  " << (fs::path(out) / f).string() << "\n";
  return kExitOk;
}

const Command reg{"explore", "figures and a markdown summary of an RSNA experiment's labels", &run_explore};

}  // namespace
}  // namespace chestlab::app

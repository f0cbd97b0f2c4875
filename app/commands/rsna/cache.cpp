// chestlab cache EXP.toml [--set k=v]...: fills the experiment dataset's preprocessing cache.
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <numeric>

#include "chestlab/errors.h"
#include "chestlab/host/loader.h"
#include "chestlab/host/registry.h"
#include "chestlab/paths.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab cache EXP.toml [--set section.key=value]... [--threads N] [--plugin-path DIR]...\n\n"
    "Opens the experiment's dataset and reads every sample once, so that its preprocessing\n"
    "cache (dataset.cache, e.g. of rsna_pneumonia) holds every image before training starts.\n"
    "An unreadable image stops the command, or is reported and skipped with\n"
    "dataset.on_error = \"skip\".\n\n";

// The cache parameter of the experiment's dataset, resolved like the dataset resolves it.
std::string cache_path_of(const ExperimentConfig& config) {
  if (!config.dataset.params.has("cache"))
    throw ConfigError(fmt::format("{}: dataset \"{}\" has no preprocessing cache (no `cache` parameter)",
                                  config.source_file, config.dataset.plugin));
  const std::string& cache = config.dataset.params.str("cache");
  if (cache.empty())
    throw ConfigError(fmt::format("{}: dataset.cache is empty: set it in the file or with --set "
                                  "dataset.cache=\"path/to/cache.h5\"",
                                  config.source_file));
  return resolve_path(cache, config.base_dir);
}

int run_cache(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a value: section.key=value")(
      "threads", po::value<int>()->default_value(2), "samples read in parallel")(
      "plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("experiment", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("experiment") || vm["threads"].as<int>() < 1) {
    std::cerr << "error: give an experiment file (and --threads >= 1)\n\n" << kUsage << options;
    return kExitUsage;
  }
  auto registry = discover_plugins(vm);
  const ExperimentConfig config = load_experiment_arg(vm, *registry);
  const std::string cache_path = cache_path_of(config);

  const auto start = std::chrono::steady_clock::now();
  auto dataset = registry->make_dataset(config.dataset.plugin, config.dataset.params,
                                        DatasetContext{config.base_dir, config.seed});
  const std::size_t total = dataset->size();
  std::cout << fmt::format("{}: {} samples of dataset \"{}\" into {}\n", config.source_file, total,
                           config.dataset.plugin, cache_path);
  // The loader's workers read every sample once, in order; the batches are dropped.
  LoaderOptions loading;
  loading.batch_size = 1;
  loading.workers = static_cast<std::size_t>(vm["threads"].as<int>());
  loading.prefetch = 2 * loading.workers;
  loading.shuffle = false;
  loading.skip_bad_samples = config.on_error == "skip";
  std::vector<std::size_t> order(total);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<SkippedSample> skipped;
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  {
    BatchLoader loader(dataset, std::move(order), nullptr, loading);
    std::size_t done = 0;
    double shown = 0;
    while (loader.next()) {
      ++done;
      const double s = elapsed();
      if (s - shown < 0.5 && done < loader.batches()) continue;
      shown = s;
      std::cout << fmt::format("\r{}/{} samples, {:.0f} s, {:.1f}/s", done, total, s, s > 0 ? done / s : 0.0)
                << std::flush;
    }
    skipped = loader.skipped();
  }
  std::cout << "\n";
  dataset.reset();  // closes (and flushes) the cache
  for (const auto& s : skipped) std::cerr << "skipped: " << s.file << ": " << s.reason << "\n";
  std::error_code ec;
  const auto bytes = fs::file_size(cache_path, ec);
  std::cout << fmt::format("cache {}: {} samples read, {} skipped, {:.1f} s, {:.1f} MB\n", cache_path,
                           total - skipped.size(), skipped.size(), elapsed(),
                           ec ? 0.0 : static_cast<double>(bytes) / 1e6);
  return kExitOk;  // skipping was asked for (on_error = "skip"); each one is listed above
}

const Command reg{"cache", "fill an experiment dataset's preprocessing cache (reads every sample once)",
                  &run_cache};

}  // namespace
}  // namespace chestlab::app

// chestlab rerun RUN.h5 [--output DIR] [--plugin-path DIR]... [--quiet]
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "chestlab/engine/run_diff.h"
#include "chestlab/engine/runfile.h"
#include "cli.h"
#include "command.h"
#include "run_output.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab rerun RUN.h5 [--output DIR] [--plugin-path DIR]... [--quiet]\n\n"
    "Trains the configuration recorded in RUN.h5 again, into a new run file (beside RUN.h5, or\n"
    "in --output DIR), and checks that it reproduces the original: every fold's status,\n"
    "history (lr, losses, metrics), best epoch and value, splits and best weights must be\n"
    "identical, bit for bit (wall-clock times are not compared). On CPU with\n"
    "train.deterministic = true they are. Exit 0 when they match, 1 with the first differing\n"
    "field when they do not (130 when interrupted).\n\n";

int run_rerun(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "output", po::value<std::string>(), "folder for the new run file (default: the original's folder)")(
      "plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins (repeatable)")(
      "quiet,q", "no training progress");
  po::options_description hidden;
  hidden.add_options()("run", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("run", -1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("run") || vm["run"].as<std::vector<std::string>>().size() != 1) {
    std::cerr << "error: give exactly one run file\n\n" << kUsage << options;
    return kExitUsage;
  }
  const std::string path = vm["run"].as<std::vector<std::string>>().front();
  const RunInfo original = read_run(path, LoadWeights::Yes);
  if (original.status == RunStatus::Running || original.status == RunStatus::Interrupted)
    std::cerr << fmt::format("note: {} is {}: the rerun trains every fold to the end, so it will differ\n", path,
                             to_string(original.status));
  if (original.config_toml.find("deterministic = false") != std::string::npos ||
      original.environment.device != "cpu")
    std::cerr << fmt::format("note: the original ran on {} with train.deterministic = {}: bit-identical results are "
                             "only promised on CPU in deterministic mode\n",
                             original.environment.device,
                             original.config_toml.find("deterministic = false") != std::string::npos ? "false" : "true");

  if (original.environment.world_size > 1) {
    // One process would train with the per-rank batch, i.e. another global batch: a
    // "mismatch" that says nothing about reproducibility.
    std::cerr << fmt::format("error: {} was trained by {} processes (run --distributed); rerun it the same way: "
                             "WORLD_SIZE={} chestlab run --distributed on its recorded configuration\n",
                             path, original.environment.world_size, original.environment.world_size);
    return kExitUsage;
  }
  RunRequest request;
  request.config_toml = original.config_toml;
  request.config_source = path + ":/config";
  request.base_dir = original.environment.base_dir;
  request.run_id = make_run_id(original.meta.config_hash);
  const fs::path folder = vm.count("output") ? fs::path(vm["output"].as<std::string>()) : fs::path(path).parent_path();
  request.run_path = (folder / (request.run_id + ".h5")).string();
  if (fs::exists(request.run_path)) {
    request.run_id += "-rerun";
    request.run_path = (folder / (request.run_id + ".h5")).string();
  }
  request.registry = discover_plugins(vm);

  const RunOutcome outcome = run_experiment_on_terminal(request, !vm.count("quiet"));
  if (outcome.exit_code == kExitInterrupted) {
    std::cout << fmt::format("rerun interrupted: {} (continue it with `chestlab run --resume`)\n", outcome.path);
    return kExitInterrupted;
  }
  const RunInfo again = read_run(outcome.path, LoadWeights::Yes);
  std::size_t epochs = 0;
  for (const auto& f : again.folds) epochs += f.history.size();
  if (auto difference = first_difference(original, again)) {
    std::cout << fmt::format("rerun: {}\nMISMATCH with {}: first difference: {}\n", outcome.path, path,
                             difference->describe());
    return kExitFailure;
  }
  std::cout << fmt::format("rerun: {}\nmatch: {} fold(s), {} epoch(s): history, best epochs, splits and best weights are "
                           "identical to {}\n",
                           outcome.path, again.folds.size(), epochs, path);
  return kExitOk;
}

const Command registration{"rerun", "train a run's recorded configuration again and check it reproduces",
                           &run_rerun};

}  // namespace
}  // namespace chestlab::app

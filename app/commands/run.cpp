// chestlab run EXP.toml [--set k=v]... [--folds 0,2] [--device D] [--output DIR] [--resume RUN.h5]
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <iostream>
#include <sstream>

#include "chestlab/params.h"
#include "cli.h"
#include "command.h"
#include "run_output.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab run EXP.toml [--set section.key=value]... [--folds 0,2] [--device D]\n"
    "                    [--output DIR] [--plugin-path DIR]... [--tensorboard] [--quiet]\n"
    "                    [--distributed [--distributed-timeout S]]\n"
    "       chestlab run --resume RUN.h5 [--plugin-path DIR]... [--tensorboard]\n\n"
    "Trains the experiment's folds and writes one run file <output>/<name>/<run id>.h5.\n"
    "Ctrl-C (SIGINT) or SIGTERM stops after the current batch, keeps every completed epoch\n"
    "and exits 130; --resume continues from the last completed epoch of each fold.\n"
    "--distributed: this process is one rank of a data-parallel run (RANK, WORLD_SIZE, MASTER_ADDR,\n"
    "MASTER_PORT, or Slurm's SLURM_PROCID/SLURM_NTASKS); see docs/distributed.md. An error on one rank\n"
    "ends every rank with that error.\n"
    "--tensorboard: also write TensorBoard event files under <output>/<name>/tb/<run id>/ (as\n"
    "train.tensorboard = true does; see docs/tensorboard.md).\n\n";

std::string folds_override(const std::string& list) {
  std::stringstream in(list);
  std::string item, out;
  while (std::getline(in, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos)
      throw po::error("--folds takes fold numbers separated by commas, e.g. --folds 0,2 (got '" + list + "')");
    out += (out.empty() ? "" : ",") + item;
  }
  return "cv.run_folds=[" + out + "]";
}

// The option's text as one TOML string, whatever it contains (the SDK's writer escapes every
// character TOML does not take as it is).
std::string quoted(const std::string& value) { return to_toml(ParamValue{value}); }

int run_run(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("set", po::value<std::vector<std::string>>()->composing(), "override a value: section.key=value (repeatable)")
      ("folds", po::value<std::string>(), "train only these folds, e.g. 0,2")
      ("device", po::value<std::string>(), "auto | cpu | cuda | cuda:N (overrides train.device)")
      ("output", po::value<std::string>(), "results folder (overrides experiment.output)")
      ("resume", po::value<std::string>(), "continue an interrupted run file")
      ("run-id", po::value<std::string>(), "the new run's id (default: UTC time and config hash; `chestlab sweep` sets it)")
      ("plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins (repeatable)")
      ("distributed", "one rank of a data-parallel run (environment: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)")
      ("distributed-timeout", po::value<double>(),
       "with --distributed: seconds each collective waits for the other ranks (default 1800)")
      ("tensorboard", "write TensorBoard event files (sets train.tensorboard; with --resume, for this process)")
      ("quiet,q", "no progress output");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("experiment", 1);

  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  try {
    RunRequest request;
    if (vm.count("set")) request.overrides = vm["set"].as<std::vector<std::string>>();
    if (vm.count("folds")) request.overrides.push_back(folds_override(vm["folds"].as<std::string>()));
    if (vm.count("device")) request.overrides.push_back("train.device=" + quoted(vm["device"].as<std::string>()));
    if (vm.count("output")) request.overrides.push_back("experiment.output=" + quoted(vm["output"].as<std::string>()));
    request.distributed = vm.count("distributed") > 0;
    if (vm.count("distributed-timeout")) {
      const double seconds = vm["distributed-timeout"].as<double>();
      if (!request.distributed) throw po::error("--distributed-timeout goes with --distributed");
      if (!(seconds >= 1 && seconds <= 7 * 24 * 3600))
        throw po::error("--distributed-timeout takes seconds from 1 to 604800 (a week)");
      request.distributed_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
    }
    if (vm.count("run-id")) {
      request.run_id = vm["run-id"].as<std::string>();
      if (request.run_id.empty() || request.run_id.find_first_not_of(
                                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                                        std::string::npos)
        throw po::error("--run-id takes letters, digits, '_', '.' and '-' (it names the run file)");
    }
    if (vm.count("resume")) {
      if (vm.count("experiment") || !request.overrides.empty())
        throw po::error("--resume continues the recorded configuration: give no experiment file or overrides");
      request.resume = vm["resume"].as<std::string>();
    } else if (vm.count("experiment")) {
      request.experiment_file = vm["experiment"].as<std::string>();
    } else {
      throw po::error("give an experiment file (or --resume RUN.h5)");
    }
    if (vm.count("tensorboard")) {
      // A new run records it in its configuration (so that a resume goes on writing); a
      // resumed run's recorded configuration stays as it is.
      request.tensorboard = true;
      if (request.resume.empty()) request.overrides.push_back("train.tensorboard=true");
    }
    request.registry = discover_plugins(vm);
    RunOutcome outcome = run_experiment_on_terminal(request, !vm.count("quiet"));
    if (outcome.path.empty()) {  // a rank other than 0 of a distributed run
      std::cout << fmt::format("\nno run file on this rank (rank 0 writes it)  (status {})\n", to_string(outcome.status));
      return outcome.exit_code;
    }
    std::cout << fmt::format("\nrun file: {}  (status {})\n", outcome.path, to_string(outcome.status));
    return outcome.exit_code;
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n\n" << kUsage << options;
    return kExitUsage;
  }
}

const Command reg{"run", "train an experiment's cross-validation folds (or --resume one)", &run_run};

}  // namespace
}  // namespace chestlab::app

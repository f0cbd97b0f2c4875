// chestlab export --run RUN.h5 [--fold K] --out model.pt
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <iostream>

#include "chestlab/errors.h"
#include "chestlab/host/torch_file.h"
#include "chestlab/engine/runfile.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab export --run RUN.h5 [--fold K] --out model.pt\n\n"
    "Writes a fold's best weights as a PyTorch file: a dict {state_dict name: tensor} that\n"
    "Python reads with torch.load and passes to Module.load_state_dict (float32 tensors; the\n"
    "names are the chestlab model's, e.g. stages.0.conv.weight). --fold may be left out when\n"
    "the run has one fold with weights (a holdout run). See docs/results-format.md.\n\n";

int usage_error(const std::string& message) {
  std::cerr << "error: " << message << "\nusage: chestlab export --run RUN.h5 [--fold K] --out model.pt\n";
  return kExitUsage;
}

int run_export(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")("run", po::value<std::string>(), "run file (.h5)")(
      "fold", po::value<int>(), "fold whose best weights to write")("out", po::value<std::string>(),
                                                                     "output file (.pt)");
  po::options_description hidden;
  po::positional_options_description positional;
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("run")) return usage_error("--run RUN.h5 is required");
  if (!vm.count("out")) return usage_error("--out FILE.pt is required");
  const std::string run_path = vm["run"].as<std::string>();
  const RunInfo run = read_run(run_path, LoadWeights::Yes);

  std::vector<int> with_weights;
  for (const FoldInfo& f : run.folds)
    if (!f.weights.empty()) with_weights.push_back(f.index);
  int fold = -1;
  if (vm.count("fold")) {
    fold = vm["fold"].as<int>();
  } else if (with_weights.size() == 1) {
    fold = with_weights.front();
  } else {
    return usage_error(fmt::format("{} has {} folds with weights ({}); choose one with --fold", run_path,
                                   with_weights.size(), fmt::join(with_weights, ", ")));
  }
  const FoldInfo* info = run.fold(fold);
  if (info == nullptr || info->weights.empty())
    throw DataError(run_path, fmt::format("fold {} has no best weights (folds with weights: {})", fold,
                                          with_weights.empty() ? std::string("none") : fmt::format("{}", fmt::join(with_weights, ", "))));

  NamedTensors tensors;
  for (const NamedArray& a : info->weights) {
    torch::Tensor t = torch::from_blob(const_cast<float*>(a.values.data()), a.shape, torch::kFloat32).clone();
    tensors.emplace_back(a.name, t);
  }
  const std::string out = vm["out"].as<std::string>();
  write_torch_file(out, tensors);
  std::cout << fmt::format("wrote {} tensors of fold {} (best epoch {}) to {}\n", tensors.size(), fold,
                           info->best_epoch + 1, out);
  return kExitOk;
}

const Command registration{"export", "write a fold's best weights as a PyTorch file (torch.load)", &run_export};

}  // namespace
}  // namespace chestlab::app

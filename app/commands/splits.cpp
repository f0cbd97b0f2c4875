// chestlab splits EXP.toml --out splits.csv [--set k=v]...: the split an experiment makes, as a
// file that `[cv] splits` reads back (engine/split_file.h).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "chestlab/engine/split_file.h"
#include "chestlab/host/experiment.h"
#include "cli.h"
#include "command.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab splits EXP.toml --out FILE.csv [--set section.key=value]... [--plugin-path DIR]...\n\n"
    "Writes the split the experiment makes (its [cv] settings on its dataset: the k-fold folds,\n"
    "or the holdout parts) as CSV, one row per sample and repeat in dataset order, under the header\n"
    "  id,group,class,repeat,fold\n"
    "(group: the patient; class: the label folds are stratified by; repeat: 0 to [cv] repeats - 1;\n"
    "fold: the fold number within the repeat, or train, val or test). [cv] splits = \"FILE.csv\" trains on such a file, this one\n"
    "or one made elsewhere (docs/experiment-format.md#split-files). --out - writes to standard\n"
    "output. Exit 0 when written, 2 for a configuration error, 3 for a data error.\n\n";

int usage_error(const std::string& message, const po::options_description& options) {
  std::cerr << "error: " << message << "\n\n" << kUsage << options;
  return kExitUsage;
}

// The assignments format_split_file takes: each sample's fold within each repeat, or its
// holdout part.
SplitAssignments assignments_of(const Experiment& experiment) {
  const CvConfig& cv = experiment.config().cv;
  const bool holdout = cv.mode == "holdout";
  SplitAssignments assignments(static_cast<std::size_t>(holdout ? 1 : cv.repeats),
                               std::vector<int>(experiment.samples().size(), -1));
  for (const FoldPlan& plan : experiment.plans()) {
    std::vector<int>& assignment = assignments.at(static_cast<std::size_t>(plan.repeat));
    if (holdout) {
      for (auto i : plan.train) assignment[i] = kTrainPart;
      for (auto i : plan.test) assignment[i] = kTestPart;
    }
    const int fold_in_repeat = plan.fold - plan.repeat * static_cast<int>(cv.folds);
    for (auto i : plan.val) assignment[i] = holdout ? kValPart : fold_in_repeat;
  }
  return assignments;
}

// "2 folds of 20, 20 samples" or "train 24, val 8, test 8 samples".
std::string describe(const Experiment& experiment) {
  std::vector<std::size_t> sizes;
  if (experiment.config().cv.mode == "holdout") {
    const FoldPlan& plan = experiment.plans().front();
    return fmt::format("train {}, val {}, test {} samples", plan.train.size(), plan.val.size(), plan.test.size());
  }
  for (const FoldPlan& plan : experiment.plans())
    if (plan.repeat == 0) sizes.push_back(plan.val.size());
  const std::int64_t repeats = experiment.config().cv.repeats;
  return fmt::format("{}{} folds of {} samples", repeats > 1 ? fmt::format("{} repeats of ", repeats) : "",
                     sizes.size(), fmt::join(sizes, ", "));
}

// Written beside the target and renamed over it: an interrupted write leaves no half file.
void write_file(const std::string& path, const std::string& text) {
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path temporary = target.string() + fmt::format(".tmp-{}", ::getpid());
  {
    std::ofstream out(temporary, std::ios::binary);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("{}: cannot write the split file", temporary.string()));
  }
  std::error_code ec;
  fs::rename(temporary, target, ec);
  if (ec) {
    fs::remove(temporary);
    throw std::runtime_error(fmt::format("{}: cannot write the split file: {}", path, ec.message()));
  }
}

int run_splits(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")("out", po::value<std::string>(),
                                                    "the CSV file to write; - = stdout")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a value: section.key=value")(
      "plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("experiment", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("experiment")) return usage_error("give an experiment file", options);
  if (!vm.count("out")) return usage_error("--out FILE.csv is required (- for standard output)", options);
  const std::string out = vm["out"].as<std::string>();

  auto registry = discover_plugins(vm);
  const ExperimentConfig config = load_experiment_arg(vm, *registry);
  const Experiment experiment(config, registry);
  std::vector<SplitSample> samples;
  std::set<std::string> groups;
  for (const SampleInfo& info : experiment.samples()) {
    samples.push_back({info.id, info.group, info.label});
    groups.insert(info.group);
  }
  const SplitMode mode = config.cv.mode == "holdout" ? SplitMode::Holdout : SplitMode::KFold;
  const std::string text = format_split_file(samples, assignments_of(experiment), mode);

  const std::string made_by = config.cv.splits.empty() ? fmt::format("[cv] seed {}", config.fold_seed())
                                                       : fmt::format("[cv] splits {}", config.splits_path());
  const std::string summary =
      fmt::format("{} samples of {} groups: {} ({})", samples.size(), groups.size(), describe(experiment), made_by);
  if (out == "-") {
    std::cout << text << std::flush;
    std::cerr << summary << "\n";
  } else {
    write_file(out, text);
    std::cout << fmt::format("wrote {}: {}\n", out, summary);
  }
  return kExitOk;
}

const Command registration{"splits", "write the folds (or holdout parts) an experiment makes as a CSV file",
                           &run_splits};

}  // namespace
}  // namespace chestlab::app

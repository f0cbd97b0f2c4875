// chestlab validate EXP.toml [--set k=v]...: every check of a run, without training.
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <iostream>

#include "chestlab/host/experiment.h"
#include "chestlab/host/loader.h"
#include "chestlab/host/plugin_guard.h"
#include "chestlab/host/registry.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab validate EXP.toml [--set section.key=value]... [--plugin-path DIR]...\n\n"
    "Checks the experiment file against every schema, opens the dataset, makes the folds,\n"
    "builds each component and runs the model on one batch. Exit 0 when a run would start,\n"
    "2 for a configuration error, 3 for a data error.\n\n";

int run_validate(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a value: section.key=value")(
      "plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("experiment", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("experiment")) {
    std::cerr << "error: give an experiment file\n\n" << kUsage << options;
    return kExitUsage;
  }
  auto registry = discover_plugins(vm);
  ExperimentConfig config = load_experiment_arg(vm, *registry);
  std::cout << fmt::format("configuration: ok (hash {})\n", config.hash());

  Experiment experiment(config, registry);
  std::cout << fmt::format("dataset: {} samples, {} fold plan(s)\n", experiment.samples().size(),
                           experiment.plans().size());
  const FoldPlan& plan = experiment.plans().front();
  auto model = experiment.make_model();
  auto loss = experiment.make_loss();
  auto scheduler = experiment.make_scheduler();
  auto metrics = experiment.make_metrics();
  auto optimizer = experiment.make_optimizer(*model);
  LoaderOptions loading;
  loading.batch_size = static_cast<std::size_t>(std::min<std::int64_t>(config.train.batch_size, 2));
  loading.workers = 0;
  loading.shuffle = false;
  BatchLoader loader(experiment.dataset(), plan.val, nullptr, loading);
  if (auto batch = loader.next()) {
    model->eval();
    torch::NoGradGuard no_grad;
    const std::string& name = config.model.plugin;
    ModelOutput out = plugin_call(Kind::Model, name, "forward", [&] { return model->forward(batch->images); });
    const double value = loss->compute(out, *batch).item<double>();
    Prediction prediction = plugin_call(Kind::Model, name, "predict", [&] { return model->predict(out); });
    for (auto& m : metrics) m->update(prediction, *batch);
    std::cout << fmt::format("model: one batch of {} image(s) {}x{} -> loss {:.4f}\n", batch->size(),
                             batch->images.size(2), batch->images.size(3), value);
  }
  std::cout << "valid: a run would start\n";
  return kExitOk;
}

const Command reg{"validate", "check an experiment file (and its data and components) without training",
                  &run_validate};

}  // namespace
}  // namespace chestlab::app

// An experiment assembled from its resolved configuration: the dataset opened, the folds
// assigned, and factories for the per-fold parts (model, optimizer, loss, ...).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/host/augment.h"
#include "chestlab/host/registry.h"

namespace chestlab {

struct FoldPlan {
  int fold = 0;    // the fold model's number: repeat * [cv] folds + the fold within the repeat
  int repeat = 0;  // [cv] repeats > 1: which fold assignment
  std::vector<std::size_t> train, val, test;  // dataset indices; test only in holdout mode
};

class Experiment {
 public:
  Experiment(ExperimentConfig config, std::shared_ptr<const PluginRegistry> registry);

  const ExperimentConfig& config() const { return config_; }
  const PluginRegistry& registry() const { return *registry_; }
  std::shared_ptr<const Dataset> dataset() const { return dataset_; }
  const std::vector<SampleInfo>& samples() const { return infos_; }
  const AugmentPipeline& augment() const { return augment_; }

  // Every fold's plan (k-fold: folds x repeats plans, repeat by repeat; holdout: one plan
  // with a test part).
  const std::vector<FoldPlan>& plans() const { return plans_; }
  // The folds this run trains: [cv] run_folds, or all.
  std::vector<int> folds_to_run() const;

  std::shared_ptr<Model> make_model() const;
  std::shared_ptr<Loss> make_loss() const;
  std::shared_ptr<Scheduler> make_scheduler() const;
  std::vector<std::shared_ptr<Metric>> make_metrics() const;
  std::unique_ptr<torch::optim::Optimizer> make_optimizer(Model& model) const;
  std::vector<std::string> metric_names() const;
  std::size_t monitor_index() const;

 private:
  void make_plans();
  void plans_from_split_file();
  void add_repeat_plans(const std::vector<int>& fold_of, int repeat);

  ExperimentConfig config_;
  std::shared_ptr<const PluginRegistry> registry_;
  std::shared_ptr<Dataset> dataset_;
  std::vector<SampleInfo> infos_;
  AugmentPipeline augment_;
  std::vector<FoldPlan> plans_;
};

// Sets `lr` on every parameter group of `optimizer`.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace chestlab

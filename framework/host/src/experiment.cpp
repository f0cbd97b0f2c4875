#include "chestlab/host/experiment.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <climits>
#include <filesystem>

#include "chestlab/errors.h"
#include "chestlab/paths.h"
#include "chestlab/host/torch_file.h"
#include "chestlab/engine/split_file.h"
#include "chestlab/engine/splits.h"

namespace chestlab {

Experiment::Experiment(ExperimentConfig config, std::shared_ptr<const PluginRegistry> registry)
    : config_(std::move(config)), registry_(std::move(registry)), augment_(config_.augment) {
  // The experiment seed, not the training seed: sweeping [train] seed must not change the data.
  DatasetContext context{config_.base_dir, config_.seed};
  dataset_ = registry_->make_dataset(config_.dataset.plugin, config_.dataset.params, context);
  infos_.reserve(dataset_->size());
  for (std::size_t i = 0; i < dataset_->size(); ++i) infos_.push_back(dataset_->info(i));
  make_plans();
}

void Experiment::make_plans() {
  const auto& cv = config_.cv;
  if (!cv.splits.empty()) {
    plans_from_split_file();
    return;
  }
  std::vector<std::string> groups;
  std::vector<std::int64_t> labels;
  for (const auto& info : infos_) {
    groups.push_back(info.group);
    labels.push_back(info.label);
  }
  if (cv.mode == "holdout") {
    HoldoutSplit split = holdout_split(groups, cv.holdout, cv.holdout_order == "random", config_.fold_seed());
    plans_.push_back({0, split.train, split.val, split.test});
    return;
  }
  std::vector<int> fold_of;
  try {
    fold_of = stratified_group_kfold(groups, labels, static_cast<int>(cv.folds), config_.fold_seed(), cv.stratify);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(fmt::format("cv: cannot split {} samples into {} folds: {}", infos_.size(), cv.folds, e.what()));
  }
  plans_from_folds(fold_of);
}

// [cv] splits: the folds (or holdout parts) the file gives, checked against the samples.
void Experiment::plans_from_split_file() {
  const auto& cv = config_.cv;
  std::vector<SplitSample> samples;
  samples.reserve(infos_.size());
  for (const auto& info : infos_) samples.push_back({info.id, info.group, info.label});
  const SplitMode mode = cv.mode == "holdout" ? SplitMode::Holdout : SplitMode::KFold;
  const int folds = static_cast<int>(std::min<std::int64_t>(cv.folds, INT_MAX));
  const std::vector<int> assignment = read_split_file(config_.splits_path(), samples, mode, folds);
  if (mode == SplitMode::KFold) {
    plans_from_folds(assignment);
    return;
  }
  FoldPlan plan;
  for (std::size_t i = 0; i < assignment.size(); ++i)
    (assignment[i] == kTrainPart ? plan.train : assignment[i] == kValPart ? plan.val : plan.test).push_back(i);
  plans_.push_back(std::move(plan));
}

// One plan per fold: fold k validates its samples and trains on the others.
void Experiment::plans_from_folds(const std::vector<int>& fold_of) {
  const auto& cv = config_.cv;
  plans_.resize(static_cast<std::size_t>(cv.folds));
  for (int k = 0; k < cv.folds; ++k) plans_[static_cast<std::size_t>(k)].fold = k;
  for (std::size_t i = 0; i < fold_of.size(); ++i) {
    for (auto& plan : plans_) (plan.fold == fold_of[i] ? plan.val : plan.train).push_back(i);
  }
}

std::vector<int> Experiment::folds_to_run() const {
  std::vector<int> folds;
  if (config_.cv.run_folds.empty()) {
    for (const auto& p : plans_) folds.push_back(p.fold);
  } else {
    for (auto k : config_.cv.run_folds) {
      if (k < 0 || static_cast<std::size_t>(k) >= plans_.size())
        throw ConfigError(fmt::format("cv.run_folds: fold {} does not exist (this split has {} fold(s))", k,
                                      plans_.size()));
      folds.push_back(static_cast<int>(k));
    }
  }
  return folds;
}

std::shared_ptr<Model> Experiment::make_model() const {
  auto model = registry_->make_model(config_.model.plugin, config_.model.params, ModelContext{});
  if (!config_.model_init.empty()) {
    InitOptions init;
    init.file = resolve_path(config_.model_init, config_.base_dir);
    init.rename = parse_rename(config_.model_init_rename);
    init.partial = config_.model_init_partial;
    init_from_torch_file(*model, init);
  }
  return model;
}
std::shared_ptr<Loss> Experiment::make_loss() const {
  return registry_->make_loss(config_.loss.plugin, config_.loss.params);
}
std::shared_ptr<Scheduler> Experiment::make_scheduler() const {
  return registry_->make_scheduler(config_.scheduler.plugin, config_.scheduler.params);
}
std::vector<std::shared_ptr<Metric>> Experiment::make_metrics() const {
  std::vector<std::shared_ptr<Metric>> metrics;
  for (const auto& m : config_.metrics) metrics.push_back(registry_->make_metric(m.plugin, m.params));
  return metrics;
}

std::vector<std::string> Experiment::metric_names() const {
  std::vector<std::string> names;
  for (const auto& m : config_.metrics) names.push_back(m.name);
  return names;
}

std::size_t Experiment::monitor_index() const {
  for (std::size_t i = 0; i < config_.metrics.size(); ++i)
    if (config_.metrics[i].monitor) return i;
  return 0;
}

std::unique_ptr<torch::optim::Optimizer> Experiment::make_optimizer(Model& model) const {
  const auto& o = config_.optimizer;
  auto params = model.parameters();
  if (o.name == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay).nesterov(o.nesterov));
  }
  const auto betas = std::make_tuple(o.betas.at(0), o.betas.at(1));
  if (o.name == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(o.lr).betas(betas).weight_decay(o.weight_decay));
  return std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(o.lr).betas(betas).weight_decay(o.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace chestlab

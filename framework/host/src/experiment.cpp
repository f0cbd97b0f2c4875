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
    FoldPlan plan;
    plan.train = std::move(split.train);
    plan.val = std::move(split.val);
    plan.test = std::move(split.test);
    plans_.push_back(std::move(plan));
    return;
  }
  for (int r = 0; r < cv.repeats; ++r) {
    std::vector<int> fold_of;
    try {
      fold_of = stratified_group_kfold(groups, labels, static_cast<int>(cv.folds), config_.repeat_fold_seed(r),
                                       cv.stratify);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(
          fmt::format("cv: cannot split {} samples into {} folds: {}", infos_.size(), cv.folds, e.what()));
    }
    add_repeat_plans(fold_of, r);
  }
}

// [cv] splits: the folds (or holdout parts) the file gives, checked against the samples.
void Experiment::plans_from_split_file() {
  const auto& cv = config_.cv;
  std::vector<SplitSample> samples;
  samples.reserve(infos_.size());
  for (const auto& info : infos_) samples.push_back({info.id, info.group, info.label});
  const SplitMode mode = cv.mode == "holdout" ? SplitMode::Holdout : SplitMode::KFold;
  const int folds = static_cast<int>(std::min<std::int64_t>(cv.folds, INT_MAX));
  const SplitAssignments assignments =
      read_split_file(config_.splits_path(), samples, mode, folds, static_cast<int>(cv.repeats));
  if (mode == SplitMode::KFold) {
    for (std::size_t r = 0; r < assignments.size(); ++r) add_repeat_plans(assignments[r], static_cast<int>(r));
    return;
  }
  const std::vector<int>& assignment = assignments.front();
  FoldPlan plan;
  for (std::size_t i = 0; i < assignment.size(); ++i)
    (assignment[i] == kTrainPart ? plan.train : assignment[i] == kValPart ? plan.val : plan.test).push_back(i);
  plans_.push_back(std::move(plan));
}

// One plan per fold of a repeat: fold j validates its samples and trains on the others.
void Experiment::add_repeat_plans(const std::vector<int>& fold_of, int repeat) {
  const int folds = static_cast<int>(config_.cv.folds);
  const std::size_t first = plans_.size();
  plans_.resize(first + static_cast<std::size_t>(folds));
  for (int j = 0; j < folds; ++j) {
    FoldPlan& plan = plans_[first + static_cast<std::size_t>(j)];
    plan.fold = repeat * folds + j;
    plan.repeat = repeat;
  }
  for (std::size_t i = 0; i < fold_of.size(); ++i)
    for (int j = 0; j < folds; ++j) {
      FoldPlan& plan = plans_[first + static_cast<std::size_t>(j)];
      (j == fold_of[i] ? plan.val : plan.train).push_back(i);
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

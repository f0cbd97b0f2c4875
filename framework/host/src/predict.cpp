#include "chestlab/host/predict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "chestlab/engine/runfile.h"
#include "chestlab/errors.h"
#include "chestlab/host/loader.h"
#include "chestlab/host/plugin_guard.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/host/weights.h"

namespace chestlab {

namespace {

std::vector<int> choose_folds(const RunInfo& run, const std::vector<int>& wanted, std::vector<std::string>& notes) {
  std::vector<int> usable;
  for (const auto& f : run.folds)
    if (f.best_epoch >= 0 && !f.weights.empty()) usable.push_back(f.index);
  if (wanted.empty()) {
    if (usable.empty())
      throw ConfigError(fmt::format("{}: no fold has best weights yet (nothing to predict with)", run.path));
    for (const auto& f : run.folds)
      if (std::find(usable.begin(), usable.end(), f.index) == usable.end())
        notes.push_back(fmt::format("fold {} has no best weights ({}); predicting without it", f.index,
                                    to_string(f.status)));
    return usable;
  }
  for (int k : wanted)
    if (std::find(usable.begin(), usable.end(), k) == usable.end())
      throw ConfigError(fmt::format("{}: fold {} {}; folds with weights: [{}]", run.path, k,
                                    run.fold(k) ? "has no best weights" : "does not exist", fmt::join(usable, ", ")));
  return wanted;
}

// The run's first metric that turns predictions into boxes, with the request's overrides.
std::shared_ptr<Metric> box_metric(const ExperimentConfig& config, const PluginRegistry& registry,
                                   const std::map<std::string, ParamValue>& overrides, PostProcessing& post) {
  for (const auto& m : config.metrics) {
    auto metric = registry.make_metric(m.plugin, m.params);
    if (!metric->makes_boxes()) continue;
    post.metric = m.plugin;
    post.name = m.name;
    if (overrides.empty()) {
      post.params = m.params;
      return metric;
    }
    std::map<std::string, ParamValue> values = m.params.values();
    for (const auto& [key, value] : overrides) {
      values[key] = value;
      post.overridden.push_back(key);
    }
    post.params = registry.params_for(Kind::Metric, m.plugin, values);
    return registry.make_metric(m.plugin, post.params);
  }
  throw ConfigError(fmt::format("{}: none of the run's metrics turns predictions into boxes (such as rsna_map), so "
                                "predict cannot post-process them",
                                config.source_file));
}

cv::Mat to_mat(const torch::Tensor& hw) {
  const torch::Tensor t = hw.to(torch::kCPU, torch::kFloat32).contiguous();
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC1, t.data_ptr<float>()).clone();
}

// Boxes of a mask in input pixels -> original pixels (they lie inside the image already).
void scale_boxes(std::vector<ScoredBox>& boxes, double sx, double sy) {
  for (auto& b : boxes) b.box = {b.box.x * sx, b.box.y * sy, b.box.w * sx, b.box.h * sy};
}

// A box model's boxes in input pixels -> original pixels, clipped to the image; boxes left
// empty by the clipping are dropped.
std::vector<ScoredBox> scale_and_clip(const std::vector<ScoredBox>& boxes, double sx, double sy, int cols, int rows) {
  std::vector<ScoredBox> out;
  for (const auto& b : boxes) {
    const double x0 = std::clamp(b.box.x * sx, 0.0, static_cast<double>(cols));
    const double y0 = std::clamp(b.box.y * sy, 0.0, static_cast<double>(rows));
    const double x1 = std::clamp((b.box.x + b.box.w) * sx, 0.0, static_cast<double>(cols));
    const double y1 = std::clamp((b.box.y + b.box.h) * sy, 0.0, static_cast<double>(rows));
    if (x1 > x0 && y1 > y0) out.push_back({std::clamp(b.score, 0.0, 1.0), {x0, y0, x1 - x0, y1 - y0}});
  }
  return out;
}

// One image's boxes from each fold -> one list: one fold's as they are, several fused by the
// caller's method or, without one, concatenated.
std::vector<ScoredBox> combine_views(std::vector<std::vector<ScoredBox>> views, const BoxFusion& fuse) {
  if (views.size() == 1) return std::move(views.front());
  if (fuse) return fuse(views);
  std::vector<ScoredBox> all;
  for (auto& view : views) all.insert(all.end(), view.begin(), view.end());
  return all;
}

Prediction to_cpu(Prediction p) {
  if (p.mask_prob.defined()) p.mask_prob = p.mask_prob.to(torch::kCPU);
  if (p.image_prob.defined()) p.image_prob = p.image_prob.to(torch::kCPU);
  for (auto& b : p.boxes) b = b.to(torch::kCPU);
  return p;
}

// The folds' predictions of one batch. Mask models: one Prediction, the mean of the folds'
// maps and image probabilities. Box models: one Prediction per fold.
std::vector<Prediction> fold_predictions(std::vector<std::shared_ptr<Model>>& models, const torch::Tensor& input,
                                         bool mask_model, const std::string& model_name) {
  std::vector<Prediction> per_fold;
  torch::Tensor mask_sum, image_sum;
  for (auto& model : models) {
    Prediction p = plugin_call(Kind::Model, model_name, "forward and predict",
                               [&] { return model->predict(model->forward(input)); });
    if (mask_model && !p.mask_prob.defined())
      throw std::runtime_error(fmt::format("model '{}' says it outputs masks but gave no mask_prob", model_name));
    if (!mask_model && static_cast<std::int64_t>(p.boxes.size()) != input.size(0))
      throw std::runtime_error(fmt::format("model '{}' gave boxes for {} of {} images", model_name, p.boxes.size(),
                                           input.size(0)));
    if (!mask_model) {
      per_fold.push_back(to_cpu(std::move(p)));
      continue;
    }
    mask_sum = mask_sum.defined() ? mask_sum + p.mask_prob : p.mask_prob;
    if (p.image_prob.defined()) image_sum = image_sum.defined() ? image_sum + p.image_prob : p.image_prob;
  }
  if (!mask_model) return per_fold;
  const double n = static_cast<double>(models.size());
  Prediction mean;
  mean.mask_prob = (mask_sum / n).to(torch::kCPU);
  if (image_sum.defined()) mean.image_prob = (image_sum / n).to(torch::kCPU);
  return {mean};
}

}  // namespace

std::string PostProcessing::describe() const {
  std::vector<std::string> parts;
  for (const auto& [key, value] : params.values()) {
    const bool overridden_here = std::find(overridden.begin(), overridden.end(), key) != overridden.end();
    parts.push_back(fmt::format("{} {}{}", key, to_toml(value), overridden_here ? " (given)" : ""));
  }
  return fmt::format("{} (metric {})", fmt::join(parts, ", "), metric);
}

PredictSummary predict_run(const PredictRequest& request, const PluginRegistry& registry,
                           const PredictCallbacks& callbacks) {
  const auto t0 = std::chrono::steady_clock::now();
  const RunInfo run = read_run(request.run_file, LoadWeights::Yes);
  const ExperimentConfig config =
      parse_experiment(run.config_toml, request.run_file + ":/config", run.environment.base_dir, {}, registry);

  PredictSummary summary;
  summary.folds = choose_folds(run, request.folds, summary.notes);
  summary.model = config.model.plugin;
  const auto metric = box_metric(config, registry, request.post_processing, summary.post);

  const torch::Device device = choose_device(request.device.empty() ? config.train.device : request.device);
  configure_threads(config.train.threads);
  configure_determinism(config.train.deterministic);

  std::vector<std::shared_ptr<Model>> models;
  for (int k : summary.folds) {
    auto model = registry.make_model(config.model.plugin, config.model.params, ModelContext{});
    load_best_weights(*model, *run.fold(k));
    model->to(device);
    model->eval();
    models.push_back(std::move(model));
  }
  const bool mask_model = registry.find(Kind::Model, config.model.plugin)->output == OutputKind::Mask;
  summary.output_kind = mask_model ? "mask" : "boxes";

  std::shared_ptr<const Dataset> dataset = registry.make_folder_dataset(
      config.dataset.plugin, config.dataset.params, DatasetContext{config.base_dir, config.seed}, request.images_dir);
  std::vector<std::string> ids(dataset->size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = dataset->info(i).id;
  if (callbacks.before) callbacks.before(ids);

  LoaderOptions loading;
  loading.batch_size = request.batch_size > 0 ? request.batch_size
                                              : static_cast<std::size_t>(std::max<std::int64_t>(config.train.batch_size, 1));
  loading.workers = static_cast<std::size_t>(std::max<std::int64_t>(config.train.workers, 1));
  loading.prefetch = 2;
  loading.shuffle = false;
  loading.pin_memory = device.is_cuda();
  std::vector<std::size_t> order(ids.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  BatchLoader loader(dataset, std::move(order), nullptr, loading);

  torch::NoGradGuard no_grad;
  while (auto batch = loader.next()) {
    const torch::Tensor input = batch->images.to(device, loading.pin_memory);
    summary.input_size = input.size(2);
    const std::vector<Prediction> predictions = fold_predictions(models, input, mask_model, summary.model);
    for (std::int64_t i = 0; i < batch->size(); ++i) {
      ImagePrediction out;
      out.id = batch->ids[static_cast<std::size_t>(i)];
      out.original_rows = static_cast<int>(batch->original_sizes[static_cast<std::size_t>(i)].first);
      out.original_cols = static_cast<int>(batch->original_sizes[static_cast<std::size_t>(i)].second);
      out.image = to_mat(batch->images[i][0]);
      const double sx = static_cast<double>(out.original_cols) / static_cast<double>(input.size(3));
      const double sy = static_cast<double>(out.original_rows) / static_cast<double>(input.size(2));
      if (mask_model) {
        out.probability = to_mat(predictions.front().mask_prob[i][0]);
        out.boxes = metric->boxes(predictions.front(), i);
        scale_boxes(out.boxes, sx, sy);
      } else {
        std::vector<std::vector<ScoredBox>> views;
        for (const auto& fold : predictions)
          views.push_back(scale_and_clip(metric->boxes(fold, i), sx, sy, out.original_cols, out.original_rows));
        out.boxes = combine_views(std::move(views), request.fuse_boxes);
      }
      std::stable_sort(out.boxes.begin(), out.boxes.end(),
                       [](const ScoredBox& a, const ScoredBox& b) { return a.score > b.score; });
      if (callbacks.each) callbacks.each(out);
      ++summary.images;
    }
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace chestlab

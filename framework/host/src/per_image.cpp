#include "chestlab/host/per_image.h"

namespace chestlab {

namespace {

torch::Tensor row_of(const torch::Tensor& t, std::int64_t index) {
  return t.defined() ? t.narrow(0, index, 1) : t;
}

template <typename T>
std::vector<T> element_of(const std::vector<T>& values, std::int64_t index) {
  const auto i = static_cast<std::size_t>(index);
  return i < values.size() ? std::vector<T>{values[i]} : std::vector<T>{};
}

}  // namespace

bool offers_per_image(const PluginRegistry& registry, const std::string& name) {
  const ComponentInfo* info = registry.find(Kind::Metric, name);
  if (!info) return false;
  const auto tag = info->tags.find(kPerImageTag);
  return tag != info->tags.end() && tag->second == kPerImageMean;
}

Batch image_of(const Batch& batch, std::int64_t index) {
  Batch one;
  one.images = row_of(batch.images, index);
  one.masks = row_of(batch.masks, index);
  one.labels = row_of(batch.labels, index);
  one.boxes = element_of(batch.boxes, index);
  one.ids = element_of(batch.ids, index);
  one.indices = element_of(batch.indices, index);
  one.original_sizes = element_of(batch.original_sizes, index);
  return one;
}

Prediction image_of(const Prediction& prediction, std::int64_t index) {
  Prediction one;
  one.mask_prob = row_of(prediction.mask_prob, index);
  one.image_prob = row_of(prediction.image_prob, index);
  one.boxes = element_of(prediction.boxes, index);
  return one;
}

PerImageScorer::PerImageScorer(const Experiment& experiment) {
  const auto& entries = experiment.config().metrics;
  const std::vector<std::shared_ptr<Metric>> all = experiment.make_metrics();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!offers_per_image(experiment.registry(), entries[i].plugin)) continue;
    metrics_.push_back(all[i]);
    scores_.metrics.push_back(entries[i].name);
  }
  reset();
}

void PerImageScorer::reset() {
  scores_.ids.clear();
  scores_.values.assign(metrics_.size(), {});
}

void PerImageScorer::add(const Prediction& prediction, const Batch& batch) {
  if (!active()) return;
  for (std::int64_t j = 0; j < batch.size(); ++j) {
    const Batch image = image_of(batch, j);
    const Prediction predicted = image_of(prediction, j);
    const auto i = static_cast<std::size_t>(j);
    scores_.ids.push_back(i < batch.ids.size() ? batch.ids[i] : std::string());
    for (std::size_t m = 0; m < metrics_.size(); ++m) {
      metrics_[m]->reset();
      metrics_[m]->update(predicted, image);
      scores_.values[m].push_back(metrics_[m]->compute());
    }
  }
}

}  // namespace chestlab

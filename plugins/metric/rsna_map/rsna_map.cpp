#include "rsna_map.h"

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <algorithm>

#include "chestlab/errors.h"

namespace chestlab::rsna_map {

std::vector<Box> truth_boxes(const torch::Tensor& boxes) {
  std::vector<Box> out;
  if (!boxes.defined() || boxes.numel() == 0) return out;
  if (boxes.dim() != 2 || boxes.size(1) != 4)
    throw std::invalid_argument(fmt::format("rsna_map: truth boxes must be [N, 4] (x, y, w, h), got {} dims",
                                            boxes.dim()));
  const torch::Tensor b = boxes.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = b.accessor<double, 2>();
  for (std::int64_t i = 0; i < b.size(0); ++i) out.push_back({a[i][0], a[i][1], a[i][2], a[i][3]});
  return out;
}

std::vector<ScoredBox> scored_boxes(const torch::Tensor& boxes) {
  std::vector<ScoredBox> out;
  if (!boxes.defined() || boxes.numel() == 0) return out;
  if (boxes.dim() != 2 || boxes.size(1) != 5)
    throw std::invalid_argument(fmt::format(
        "rsna_map: predicted boxes must be [N, 5] (score, x, y, w, h), got {} dims", boxes.dim()));
  const torch::Tensor b = boxes.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = b.accessor<double, 2>();
  for (std::int64_t i = 0; i < b.size(0); ++i) out.push_back({a[i][0], {a[i][1], a[i][2], a[i][3], a[i][4]}});
  return out;
}

std::vector<ScoredBox> RsnaMap::boxes(const Prediction& prediction, std::int64_t image) const {
  std::vector<ScoredBox> out;
  if (prediction.mask_prob.defined()) {
    const torch::Tensor prob = prediction.mask_prob[image][0].to(torch::kCPU, torch::kFloat32).contiguous();
    const cv::Mat map(static_cast<int>(prob.size(0)), static_cast<int>(prob.size(1)), CV_32FC1, prob.data_ptr<float>());
    BoxesFromMaskOptions from_mask = options_.from_mask;
    std::optional<double> image_score;
    if (from_mask.gate_threshold && prediction.image_prob.defined()) {
      image_score = prediction.image_prob[image].item<double>();
    } else if (from_mask.gate_threshold) {
      // A map with no foreground needs no gate (the host's empty-prediction baseline has no
      // image_prob); any other map does.
      from_mask.gate_threshold.reset();
      if (!boxes_from_mask(map, from_mask).empty())
        throw ConfigError("metric 'rsna_map': gate is set, but the model gives no image-level probability "
                          "(image_prob); set gate = 0 or use a model with an image head");
    }
    out = boxes_from_mask(map, from_mask, image_score);
  } else {
    out = scored_boxes(prediction.boxes[static_cast<std::size_t>(image)]);
  }
  out.erase(std::remove_if(out.begin(), out.end(),
                             [&](const ScoredBox& b) { return b.score < options_.min_score; }),
              out.end());
  return out;
}

void RsnaMap::update(const Prediction& prediction, const Batch& batch) {
  const std::int64_t images = batch.size();
  if (static_cast<std::int64_t>(batch.boxes.size()) != images)
    throw ConfigError("metric 'rsna_map' needs ground-truth boxes, but the dataset's batches have none "
                      "(use a dataset that provides boxes, e.g. rsna_pneumonia or synthetic_cxr)");
  const bool from_mask = prediction.mask_prob.defined();
  if (!from_mask && static_cast<std::int64_t>(prediction.boxes.size()) != images)
    throw ConfigError("metric 'rsna_map' needs a mask (mask_prob) or boxes from the model, but the prediction has "
                      "neither");
  if (from_mask && prediction.mask_prob.size(0) != images)
    throw std::invalid_argument(fmt::format("rsna_map: {} predicted masks for a batch of {} images",
                                            prediction.mask_prob.size(0), images));
  for (std::int64_t i = 0; i < images; ++i)
    accumulator_.add(truth_boxes(batch.boxes[static_cast<std::size_t>(i)]), boxes(prediction, i));
}

}  // namespace chestlab::rsna_map

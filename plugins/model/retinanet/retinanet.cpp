// retinanet's heads, forward pass and post-processing.
#include "retinanet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "chestlab/errors.h"

namespace chestlab::retinanet {

HeadImpl::HeadImpl(std::int64_t channels, std::int64_t convs, std::int64_t anchors, std::int64_t outputs,
                   double bias)
    : outputs_(outputs) {
  torch::nn::Sequential tower;
  for (std::int64_t i = 0; i < convs; ++i) {
    tower->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
    tower->push_back(torch::nn::ReLU());
  }
  tower_ = register_module("tower", tower);
  out_ = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, anchors * outputs, 3).padding(1)));
  // The paper's initialisation: N(0, 0.01) weights, zero biases but the classifier's prior.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::normal_(c->weight, 0.0, 0.01);
      torch::nn::init::zeros_(c->bias);
    }
  }
  torch::nn::init::constant_(out_->bias, bias);
}

torch::Tensor HeadImpl::forward(const torch::Tensor& feature) {
  const auto y = out_->forward(tower_->forward(feature));  // [B, A * K, H, W]
  return y.permute({0, 2, 3, 1}).reshape({y.size(0), -1, outputs_});
}

// The options come from the schema (plugin.cpp), which bounds every value and checks the
// list lengths, the depth and the gate.
RetinaNet::RetinaNet(const RetinaNetOptions& options) : options_(options) {
  const auto shapes = static_cast<std::int64_t>(options_.ratios.size() * options_.scales.size());
  backbone_ = register_module("backbone", ResNetBackbone(options_.in_channels, options_.depth, options_.width));
  fpn_ = register_module("fpn", FeaturePyramid(backbone_->channels(), options_.fpn_channels));
  const double prior_bias = -std::log((1.0 - options_.prior) / options_.prior);
  cls_head_ = register_module("cls_head", Head(options_.fpn_channels, options_.head_convs, shapes, 1, prior_bias));
  box_head_ = register_module("box_head", Head(options_.fpn_channels, options_.head_convs, shapes, 4, 0.0));
  if (options_.image_head)
    image_head_ = register_module("image_head", torch::nn::Linear(backbone_->channels()[2], 1));
}

std::pair<torch::Tensor, std::vector<std::int64_t>> RetinaNet::anchors(
    const std::vector<std::pair<std::int64_t, std::int64_t>>& level_sizes) const {
  std::vector<detection::AnchorLevel> levels;
  std::vector<std::int64_t> counts;
  const auto shapes = static_cast<std::int64_t>(options_.ratios.size() * options_.scales.size());
  for (std::size_t i = 0; i < level_sizes.size(); ++i) {
    detection::AnchorLevel l;
    l.height = level_sizes[i].first;
    l.width = level_sizes[i].second;
    l.stride = std::ldexp(1.0, static_cast<int>(i) + 3);
    l.size = options_.sizes.at(i);
    levels.push_back(l);
    counts.push_back(l.height * l.width * shapes);
  }
  return {detection::make_anchors(levels, options_.ratios, options_.scales), counts};
}

ModelOutput RetinaNet::forward(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != options_.in_channels || images.size(2) < 32 || images.size(3) < 32)
    throw ConfigError(fmt::format("model 'retinanet': expects images [B, {}, H, W] with H, W >= 32, got [{}]",
                                  options_.in_channels, fmt::join(images.sizes().vec(), ", ")));
  const auto c = backbone_->forward(images);
  const auto p = fpn_->forward(c);
  std::vector<torch::Tensor> cls, box;
  std::vector<std::pair<std::int64_t, std::int64_t>> level_sizes;
  for (const auto& level : p) {
    cls.push_back(cls_head_->forward(level));
    box.push_back(box_head_->forward(level));
    level_sizes.emplace_back(level.size(2), level.size(3));
  }
  auto [anchors, counts] = this->anchors(level_sizes);
  ModelOutput out;
  out.extra[kClsLogits] = torch::cat(cls, 1).squeeze(2);
  out.extra[kBoxDeltas] = torch::cat(box, 1);
  out.extra[kAnchors] = anchors.to(images.device());
  out.extra[kLevelAnchors] = torch::tensor(counts, torch::kInt64);
  out.extra[kBoxWeights] = torch::tensor(std::vector<double>(options_.box_weights.begin(), options_.box_weights.end()),
                                         torch::kFloat64);
  out.extra[kImageSize] = torch::tensor(std::vector<std::int64_t>{images.size(2), images.size(3)}, torch::kInt64);
  if (image_head_) out.image_logits = image_head_->forward(c[2].mean({2, 3})).squeeze(1);
  return out;
}

torch::Tensor RetinaNet::detect_one(const torch::Tensor& cls, const torch::Tensor& deltas, const torch::Tensor& anchors,
                                    const std::vector<std::int64_t>& per_level, double height, double width) const {
  const detection::BoxCoder coder{options_.box_weights};
  std::vector<torch::Tensor> boxes, scores;
  std::int64_t start = 0;
  for (std::int64_t count : per_level) {
    auto level_scores = torch::sigmoid(cls.slice(0, start, start + count));
    auto index = torch::nonzero(level_scores > options_.score_threshold).squeeze(1) + start;
    auto kept = torch::sigmoid(cls.index_select(0, index));
    if (kept.size(0) > options_.top_k) {
      auto top = kept.topk(options_.top_k);
      kept = std::get<0>(top);
      index = index.index_select(0, std::get<1>(top));
    }
    boxes.push_back(coder.decode(anchors.index_select(0, index), deltas.index_select(0, index)));
    scores.push_back(kept);
    start += count;
  }
  auto all_boxes = torch::cat(boxes, 0);
  auto all_scores = torch::cat(scores, 0);
  // Clip to the image, drop boxes that vanish.
  all_boxes = torch::stack({all_boxes.select(1, 0).clamp(0, width), all_boxes.select(1, 1).clamp(0, height),
                            all_boxes.select(1, 2).clamp(0, width), all_boxes.select(1, 3).clamp(0, height)},
                           1);
  const auto visible = ((all_boxes.select(1, 2) - all_boxes.select(1, 0)) > 1e-3) &
                       ((all_boxes.select(1, 3) - all_boxes.select(1, 1)) > 1e-3);
  const auto index = torch::nonzero(visible).squeeze(1);
  all_boxes = all_boxes.index_select(0, index);
  all_scores = all_scores.index_select(0, index);
  const auto keep = detection::nms(all_boxes, all_scores, options_.nms_iou, options_.max_detections);
  const auto xywh = detection::xyxy_to_xywh(all_boxes.index_select(0, keep));
  return torch::cat({all_scores.index_select(0, keep).unsqueeze(1), xywh}, 1).to(torch::kFloat32);
}

Prediction RetinaNet::predict(const ModelOutput& output) {
  for (const char* key : {kClsLogits, kBoxDeltas, kAnchors, kLevelAnchors, kImageSize})
    if (!output.extra.count(key))
      throw std::invalid_argument(fmt::format("retinanet: predict() needs the model's own forward output ({})", key));
  const auto& cls = output.extra.at(kClsLogits);
  const auto& deltas = output.extra.at(kBoxDeltas);
  const auto& anchors = output.extra.at(kAnchors);
  const auto counts_tensor = output.extra.at(kLevelAnchors);
  const std::vector<std::int64_t> counts(counts_tensor.data_ptr<std::int64_t>(),
                                         counts_tensor.data_ptr<std::int64_t>() + counts_tensor.numel());
  const auto size = output.extra.at(kImageSize);
  const double height = static_cast<double>(size[0].item<std::int64_t>());
  const double width = static_cast<double>(size[1].item<std::int64_t>());
  Prediction p;
  if (output.image_logits.defined()) p.image_prob = torch::sigmoid(output.image_logits);
  for (std::int64_t b = 0; b < cls.size(0); ++b) {
    if (p.image_prob.defined() && options_.gate > 0 && p.image_prob[b].item<double>() < options_.gate) {
      p.boxes.push_back(torch::zeros({0, 5}, cls.options().dtype(torch::kFloat32)));
      continue;
    }
    p.boxes.push_back(detect_one(cls[b].detach(), deltas[b].detach(), anchors, counts, height, width));
  }
  return p;
}

}  // namespace chestlab::retinanet

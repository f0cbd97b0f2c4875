#include "retinanet_focal.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <array>

#include "chestlab/detection/ops.h"
#include "chestlab/errors.h"

namespace chestlab::retinanet_focal {

namespace det = chestlab::detection;

namespace {

const torch::Tensor& need(const ModelOutput& output, const char* key) {
  auto it = output.extra.find(key);
  if (it == output.extra.end())
    throw ConfigError(fmt::format("loss 'retinanet_focal' needs an anchor-based box model (e.g. retinanet); the "
                                  "model's output has no '{}'",
                                  key));
  return it->second;
}

}  // namespace

RetinaFocalTerms RetinaFocalLoss::terms(const ModelOutput& output, const Batch& batch) const {
  const auto& cls = need(output, det::keys::kClsLogits);      // [B, A]
  const auto& deltas = need(output, det::keys::kBoxDeltas);   // [B, A, 4]
  const auto& anchors = need(output, det::keys::kAnchors);    // [A, 4]
  const auto weights = need(output, det::keys::kBoxWeights).to(torch::kCPU, torch::kFloat64).contiguous();
  det::BoxCoder coder;
  for (int i = 0; i < 4; ++i) coder.weights[static_cast<std::size_t>(i)] = weights[i].item<double>();
  const std::int64_t images = cls.size(0);
  if (static_cast<std::int64_t>(batch.boxes.size()) != images)
    throw ConfigError("loss 'retinanet_focal' needs ground-truth boxes, but the dataset's batches have none "
                      "(use a dataset that provides boxes, e.g. rsna_pneumonia or synthetic_cxr)");

  std::vector<torch::Tensor> cls_terms, box_terms;
  std::int64_t positives = 0;
  std::vector<float> has_box;
  for (std::int64_t b = 0; b < images; ++b) {
    const auto truth_xywh = batch.boxes[static_cast<std::size_t>(b)].to(anchors.device(), anchors.dtype());
    has_box.push_back(truth_xywh.size(0) > 0 ? 1.0f : 0.0f);
    torch::Tensor matches;
    torch::Tensor truth;
    if (truth_xywh.size(0) == 0) {
      matches = det::match_nothing(anchors.size(0), anchors.device());
    } else {
      truth = det::xywh_to_xyxy(truth_xywh);
      matches = det::match_anchors(det::box_iou(truth, anchors), options_.fg_iou, options_.bg_iou,
                                   options_.force_best);
    }
    const auto positive = matches >= 0;
    const auto counted = matches != det::kIgnore;
    const auto targets = positive.to(cls.dtype());
    const auto focal = det::sigmoid_focal_loss(cls[b], targets, options_.alpha, options_.gamma);
    cls_terms.push_back((focal * counted.to(cls.dtype())).sum());
    const auto index = torch::nonzero(positive).squeeze(1);
    positives += index.size(0);
    if (index.size(0) > 0) {
      const auto target = coder.encode(anchors.index_select(0, index), truth.index_select(0, matches.index_select(0, index)));
      box_terms.push_back(det::smooth_l1(deltas[b].index_select(0, index) - target, options_.beta).sum());
    }
  }
  const double normaliser = static_cast<double>(std::max<std::int64_t>(positives, 1));
  RetinaFocalTerms t;
  t.classification = torch::stack(cls_terms).sum() / normaliser;
  t.box = box_terms.empty() ? (deltas.sum() * 0.0) : torch::stack(box_terms).sum() / normaliser;
  t.total = t.classification + options_.box_weight * t.box;
  if (output.image_logits.defined()) {
    const auto target = torch::tensor(has_box).to(output.image_logits.device(), output.image_logits.dtype());
    t.image = torch::binary_cross_entropy_with_logits(output.image_logits, target);
    t.total = t.total + options_.image_weight * t.image;
  }
  return t;
}

torch::Tensor RetinaFocalLoss::compute(const ModelOutput& output, const Batch& batch) {
  return terms(output, batch).total;
}

}  // namespace chestlab::retinanet_focal

// retinanet_focal: the RetinaNet training loss, from what an anchor-based detector leaves in
// ModelOutput::extra (chestlab/detection/ops.h keys) and the batch's truth boxes.
//
//   matching: per image, IoU of every anchor with every truth box; >= fg_iou positive,
//             < bg_iou negative, in between ignored; each truth box's best anchors positive
//   loss:     sum of the sigmoid focal loss over non-ignored anchors
//             + box_weight * sum of smooth-L1 over the encoded positives' deltas,
//             both divided by the number of positive anchors in the batch (at least 1),
//             + image_weight * BCE of the image-level logit against "has a box" when the
//             model has an image head.
#pragma once

#include "chestlab/loss.h"

namespace chestlab::retinanet_focal {

struct RetinaFocalOptions {
  double alpha = 0.25;
  double gamma = 2.0;
  double fg_iou = 0.5;
  double bg_iou = 0.4;
  bool force_best = true;
  double beta = 1.0 / 9.0;  // smooth-L1 transition (Detectron's RetinaNet)
  double box_weight = 1.0;
  double image_weight = 1.0;
};

struct RetinaFocalTerms {
  torch::Tensor classification;
  torch::Tensor box;
  torch::Tensor image;  // undefined without an image head
  torch::Tensor total;
};

class RetinaFocalLoss : public Loss {
 public:
  explicit RetinaFocalLoss(const RetinaFocalOptions& options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;
  RetinaFocalTerms terms(const ModelOutput& output, const Batch& batch) const;

 private:
  RetinaFocalOptions options_;
};

}  // namespace chestlab::retinanet_focal

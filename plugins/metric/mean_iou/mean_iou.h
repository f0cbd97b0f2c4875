// mean_iou: mean over images of the IoU of the thresholded mask with the ground truth.
// update() receives CPU tensors: prediction.mask_prob [B, 1, H, W] and batch.masks (0/1).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "chestlab/metric.h"

namespace chestlab::mean_iou {

class MeanIou : public Metric {
 public:
  MeanIou(double threshold, double empty_score) : threshold_(threshold), empty_score_(empty_score) {}
  void reset() override;
  void update(const Prediction& prediction, const Batch& batch) override;
  // Mean over images of |P.T| / |P+T|, empty_score for an image where both are empty;
  // NaN before any update.
  double compute() const override;

 private:
  double threshold_;
  double empty_score_;
  double iou_sum_ = 0.0;
  std::int64_t images_ = 0;
};

}  // namespace chestlab::mean_iou

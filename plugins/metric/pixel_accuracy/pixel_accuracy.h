// pixel_accuracy: the fraction of pixels whose thresholded prediction equals the ground truth.
// update() receives CPU tensors: prediction.mask_prob [B, 1, H, W] and batch.masks (0/1).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "chestlab/metric.h"

namespace chestlab::pixel_accuracy {

class PixelAccuracy : public Metric {
 public:
  explicit PixelAccuracy(double threshold) : threshold_(threshold) {}
  void reset() override;
  void update(const Prediction& prediction, const Batch& batch) override;
  // Fraction of pixels classified correctly; NaN before any update.
  double compute() const override;

 private:
  double threshold_;
  std::int64_t correct_ = 0;
  std::int64_t total_ = 0;
};

}  // namespace chestlab::pixel_accuracy

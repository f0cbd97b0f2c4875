// Mask metrics: pixel accuracy and mean per-image IoU of thresholded probabilities.
// update() receives CPU tensors: prediction.mask_prob [B, 1, H, W] and batch.masks (0/1).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "chestlab/metric.h"

namespace chestlab::seg_metric {

struct BinaryMasks {
  torch::Tensor predicted;  // bool [B, H*W]: probability >= threshold
  torch::Tensor truth;      // bool [B, H*W]: mask >= 0.5 (tolerates interpolated masks)
};

// Checks presence and shapes (ConfigError when the pairing cannot work, std::invalid_argument
// for a shape mismatch) and binarises both masks.
BinaryMasks binarise(const char* metric_name, const Prediction& prediction, const Batch& batch,
                     double threshold);

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

}  // namespace chestlab::seg_metric

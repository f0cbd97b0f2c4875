// dice: mean over images of the Dice coefficient of the thresholded mask with the ground truth.
// update() receives CPU tensors: prediction.mask_prob [B, 1, H, W] and batch.masks (0/1).
// The metric shares its name with the dice loss (plugins/loss/dice): the registry keys
// components by kind and name, and the CMake targets are chestlab_<kind>_<name>. The C++
// namespace is dice_metric so that the two never meet in one namespace.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "chestlab/metric.h"

namespace chestlab::dice_metric {

class Dice : public Metric {
 public:
  Dice(double threshold, double empty_score) : threshold_(threshold), empty_score_(empty_score) {}
  void reset() override;
  void update(const Prediction& prediction, const Batch& batch) override;
  // Mean over images of 2 |P.T| / (|P| + |T|), empty_score for an image where both are empty;
  // NaN before any update.
  double compute() const override;

 private:
  double threshold_;
  double empty_score_;
  double dice_sum_ = 0.0;
  std::int64_t images_ = 0;
};

}  // namespace chestlab::dice_metric

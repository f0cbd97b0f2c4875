// Validation metrics, accumulated over a fold's validation set each epoch.
#pragma once

#include <vector>

#include "chestlab/box.h"
#include "chestlab/component.h"
#include "chestlab/dataset.h"
#include "chestlab/model.h"

namespace chestlab {

// The model outputs a metric reads and its direction are declared in its ComponentInfo
// (accepts, higher_is_better).
class Metric {
 public:
  virtual ~Metric() = default;
  virtual void reset() = 0;
  // Tensors are on the CPU.
  virtual void update(const Prediction& prediction, const Batch& batch) = 0;
  virtual double compute() const = 0;

  // Metrics that score boxes publish how a prediction becomes the boxes they score, so that
  // `chestlab predict` post-processes exactly as validation did, whatever the metric.
  virtual bool makes_boxes() const { return false; }
  // Boxes of image `index` of `prediction` (CPU tensors, batch layout), in pixels of the
  // model's input. Only called when makes_boxes(); ConfigError when the prediction lacks
  // what the post-processing needs.
  virtual std::vector<ScoredBox> boxes(const Prediction& prediction, std::int64_t index) const { return {}; }
};

}  // namespace chestlab

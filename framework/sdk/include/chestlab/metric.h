// Validation metrics, accumulated over a fold's validation set each epoch.
#pragma once

#include "chestlab/component.h"
#include "chestlab/dataset.h"
#include "chestlab/model.h"

namespace chestlab {

class Metric {
 public:
  virtual ~Metric() = default;
  virtual OutputKind requires_output() const { return OutputKind::Mask; }
  virtual bool higher_is_better() const { return true; }
  virtual void reset() = 0;
  // Tensors are on the CPU.
  virtual void update(const Prediction& prediction, const Batch& batch) = 0;
  virtual double compute() const = 0;
};

}  // namespace chestlab

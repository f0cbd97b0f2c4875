#pragma once

#include <torch/types.h>

#include "chestlab/component.h"
#include "chestlab/dataset.h"
#include "chestlab/model.h"

namespace chestlab {

class Loss {
 public:
  virtual ~Loss() = default;
  // The model output this loss reads; the host refuses a pairing that does not match.
  virtual OutputKind requires_output() const { return OutputKind::Mask; }
  // Scalar loss, differentiable, on the batch's device.
  virtual torch::Tensor compute(const ModelOutput& output, const Batch& batch) = 0;
};

}  // namespace chestlab

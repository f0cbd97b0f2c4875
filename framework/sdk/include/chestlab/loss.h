#pragma once

#include <torch/types.h>

#include "chestlab/component.h"
#include "chestlab/dataset.h"
#include "chestlab/model.h"

namespace chestlab {

// The model outputs a loss reads are declared in its ComponentInfo::accepts; the
// experiment-file check refuses a model whose output is not among them.
class Loss {
 public:
  virtual ~Loss() = default;
  // Scalar loss, differentiable, on the batch's device.
  virtual torch::Tensor compute(const ModelOutput& output, const Batch& batch) = 0;
};

}  // namespace chestlab

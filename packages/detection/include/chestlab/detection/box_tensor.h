// Boxes as tensors: the one conversion datasets and models share.
#pragma once

#include <torch/types.h>

#include <vector>

#include "chestlab/box.h"

namespace chestlab {

// [N, 4] float32 rows (x, y, w, h); [0, 4] for no boxes.
torch::Tensor boxes_to_tensor(const std::vector<Box>& boxes);

}  // namespace chestlab

// What every mask loss reads first: the model's mask logits and the batch's masks,
// checked once here so that each loss reports a wrong pairing the same way.
#pragma once

#include <torch/types.h>

#include "chestlab/dataset.h"
#include "chestlab/model.h"

namespace chestlab {

struct MaskPair {
  torch::Tensor logits;   // [B, 1, H, W]
  torch::Tensor targets;  // same shape and dtype as logits
};

// Throws ConfigError (naming `loss_name`) when the model produced no mask logits or the
// batch has no masks, std::invalid_argument when their shapes differ.
MaskPair mask_pair(const char* loss_name, const ModelOutput& output, const Batch& batch);

}  // namespace chestlab

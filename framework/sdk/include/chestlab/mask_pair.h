// What every mask loss and mask metric reads first: the model's mask (logits or
// probabilities) and the batch's masks, checked once here so that each reports a wrong
// pairing the same way.
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

struct BinaryMasks {
  torch::Tensor predicted;  // bool [B, H*W]: probability >= threshold
  torch::Tensor truth;      // bool [B, H*W]: mask >= 0.5 (tolerates interpolated masks)
};

// The prediction's mask_prob and the batch's masks (CPU tensors), binarised. Throws
// ConfigError (naming `metric_name`) when either is missing, std::invalid_argument when
// their shapes differ.
BinaryMasks binary_masks(const char* metric_name, const Prediction& prediction, const Batch& batch,
                         double threshold);

}  // namespace chestlab

// Model weights <-> the run file's named float arrays (state_dict names), shared by the run
// driver (which records each fold's best weights) and the commands that use them again
// (`predict`, the holdout test pass).
#pragma once

#include <torch/nn/module.h>

#include <vector>

#include "chestlab/engine/runfile.h"

namespace chestlab {

// Every parameter and buffer of `model` as float32 arrays, parameters first, in
// named_parameters / named_buffers order (what RunWriter::set_fold_best stores).
std::vector<NamedArray> weight_arrays(const torch::nn::Module& model);

// Copies recorded arrays into the model's parameters and buffers by name (to the model's
// device and dtype). Throws std::runtime_error naming the array when a name is not a
// parameter or buffer of the model or its shape differs.
void load_weights(torch::nn::Module& model, const std::vector<NamedArray>& weights);

// The fold's best weights (read with LoadWeights::Yes) into `model`. Throws
// std::runtime_error when the fold has no best weights, or as load_weights.
void load_best_weights(torch::nn::Module& model, const FoldInfo& fold);

}  // namespace chestlab

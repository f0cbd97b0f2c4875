// Models: a torch::nn::Module that maps a batch of 1-channel images to outputs.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "chestlab/component.h"

namespace chestlab {

struct ModelOutput {
  torch::Tensor mask_logits;   // [B, 1, H, W] for mask models (same H, W as the input)
  torch::Tensor image_logits;  // [B] optional image-level opacity logit
  std::map<std::string, torch::Tensor> extra;  // model-specific raw outputs (detector heads)
};

// Post-processed outputs, what metrics and `predict` consume.
struct Prediction {
  torch::Tensor mask_prob;             // [B, 1, H, W] probabilities, or undefined
  std::vector<torch::Tensor> boxes;    // per image [N, 5] (score, x, y, w, h), for box models
  torch::Tensor image_prob;            // [B], or undefined
};

// What the model outputs (mask or boxes) is declared in its ComponentInfo::output.
class Model : public torch::nn::Module {
 public:
  virtual ModelOutput forward(const torch::Tensor& images) = 0;
  // Default for mask models: sigmoid of the logits (and of image_logits when present).
  virtual Prediction predict(const ModelOutput& output);
};

struct ModelContext {
  std::int64_t in_channels = 1;
};

}  // namespace chestlab

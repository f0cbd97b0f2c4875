// Out-of-line parts of the SDK's LibTorch classes.
#include <torch/torch.h>

#include "chestlab/dataset.h"
#include "chestlab/model.h"

namespace chestlab {

Batch Batch::to(const torch::Device& device, bool non_blocking) const {
  Batch out = *this;
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(device, non_blocking) : t; };
  out.images = move(images);
  out.masks = move(masks);
  out.labels = move(labels);
  for (auto& b : out.boxes) b = move(b);
  return out;
}

Prediction Model::predict(const ModelOutput& output) {
  Prediction p;
  if (output.mask_logits.defined()) p.mask_prob = torch::sigmoid(output.mask_logits);
  if (output.image_logits.defined()) p.image_prob = torch::sigmoid(output.image_logits);
  return p;
}

}  // namespace chestlab

#include "chestlab/host/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <stdexcept>

namespace chestlab {

namespace {

NamedArray float_array(const std::string& name, const torch::Tensor& tensor) {
  const torch::Tensor values = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  NamedArray a;
  a.name = name;
  a.shape.assign(values.sizes().begin(), values.sizes().end());
  const float* data = values.data_ptr<float>();
  a.values.assign(data, data + values.numel());
  return a;
}

}  // namespace

std::vector<NamedArray> weight_arrays(const torch::nn::Module& model) {
  std::vector<NamedArray> arrays;
  for (const auto& p : model.named_parameters(true)) arrays.push_back(float_array(p.key(), p.value()));
  for (const auto& b : model.named_buffers(true)) arrays.push_back(float_array(b.key(), b.value()));
  return arrays;
}

void load_weights(torch::nn::Module& model, const std::vector<NamedArray>& weights) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(true);
  auto buffers = model.named_buffers(true);
  for (const auto& a : weights) {
    torch::Tensor* target = params.find(a.name);
    if (!target) target = buffers.find(a.name);
    if (!target) throw std::runtime_error("recorded weight '" + a.name + "' is not a parameter of the model");
    const std::vector<std::int64_t> shape(target->sizes().begin(), target->sizes().end());
    if (shape != a.shape)
      throw std::runtime_error(fmt::format("recorded weight '{}' has shape [{}], the model's has [{}]", a.name,
                                           fmt::join(a.shape, ", "), fmt::join(shape, ", ")));
    if (static_cast<std::int64_t>(a.values.size()) != target->numel())
      throw std::runtime_error("recorded weight '" + a.name + "' has no values (read the run file with weights)");
    auto src = torch::from_blob(const_cast<float*>(a.values.data()), a.shape, torch::kFloat32);
    target->copy_(src.to(target->device(), target->dtype()));
  }
}

void load_best_weights(torch::nn::Module& model, const FoldInfo& fold) {
  if (fold.best_epoch < 0 || fold.weights.empty())
    throw std::runtime_error(fmt::format("fold {} has no best weights (status {})", fold.index,
                                         to_string(fold.status)));
  load_weights(model, fold.weights);
}

}  // namespace chestlab

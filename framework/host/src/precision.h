// train.precision: autocast of the forward pass and the loss to bf16 or fp16, and for fp16
// the dynamic loss scale that keeps small gradients from vanishing. The weights, the
// optimizer and the gradients stay fp32. This is the one file that knows how LibTorch spells
// autocast, which changed in 2.4.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace chestlab {

enum class Precision { Fp32, Bf16, Fp16 };

// train.precision (validated by the schema: fp32, bf16 or fp16) on `device`. Throws
// ConfigError for a combination the device cannot compute: fp16 on the CPU.
Precision precision_on(const std::string& name, const torch::Device& device);

// Autocast on the device's type while alive, to the precision's type (nothing for fp32);
// restores what was set before, and drops the casts of the weights it cached, which the next
// optimizer step makes stale.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  c10::ScalarType was_type_ = c10::ScalarType::Float;
};

// fp16's dynamic loss scale, as torch.cuda.amp.GradScaler does it: the loss is multiplied by
// the scale before backward; a step whose gradients overflow is skipped and halves the
// scale; 2000 steps in a row without overflow double it. All on the device (ATen's
// _amp_foreach_non_finite_check_and_unscale_ and _amp_update_scale_) except the one read
// per step that decides whether the optimizer steps.
class GradScaler {
 public:
  explicit GradScaler(const torch::Device& device);
  torch::Tensor scale(const torch::Tensor& loss) const;
  // Divides the gradients by the scale in place; false when one of them is not finite (the
  // step must then be skipped). Reads one number from the device.
  bool unscale(const std::vector<torch::Tensor>& parameters);
  // After the step (taken or skipped): the next scale.
  void update();
  // For resume: the scale and the count of steps since the last overflow.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  torch::Tensor scale_;           // float32 [1]
  torch::Tensor growth_tracker_;  // int32 [1]
  torch::Tensor found_inf_;       // float32 [1]
};

}  // namespace chestlab

#include "precision.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/version.h>

#include "chestlab/errors.h"

// LibTorch 2.4 replaced the per-backend autocast functions (set_cpu_enabled,
// set_autocast_cpu_dtype, ...) by ones taking the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CHESTLAB_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define CHESTLAB_AUTOCAST_BY_DEVICE_TYPE 0
#endif

namespace chestlab {

namespace {

// torch.cuda.amp.GradScaler's defaults.
constexpr double kInitialScale = 65536.0;
constexpr double kGrowthFactor = 2.0;
constexpr double kBackoffFactor = 0.5;
constexpr std::int64_t kGrowthInterval = 2000;

bool autocast_enabled(c10::DeviceType type) {
#if CHESTLAB_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

c10::ScalarType autocast_type(c10::DeviceType type) {
#if CHESTLAB_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(c10::DeviceType type, bool enabled, c10::ScalarType scalar_type) {
#if CHESTLAB_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, scalar_type);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(scalar_type);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(scalar_type);
  }
#endif
}

}  // namespace

Precision precision_on(const std::string& name, const torch::Device& device) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  if (name == "fp16") {
    // LibTorch 1.13 autocasts the CPU to bf16 only, and its gradient scaler kernels are CUDA's.
    if (!device.is_cuda())
      throw ConfigError(fmt::format("train.precision = \"fp16\" needs a CUDA device, and this run trains on {}: "
                                    "use precision = \"bf16\" (or \"fp32\") there, or train.device = \"cuda\"",
                                    device.str()));
    return Precision::Fp16;
  }
  throw ConfigError(fmt::format("train.precision: expected one of fp32, bf16, fp16, got \"{}\"", name));
}

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) : device_type_(device.type()) {
  if (precision == Precision::Fp32) return;
  active_ = true;
  was_enabled_ = autocast_enabled(device_type_);
  was_type_ = autocast_type(device_type_);
  at::autocast::increment_nesting();
  set_autocast(device_type_, true, precision == Precision::Bf16 ? c10::ScalarType::BFloat16 : c10::ScalarType::Half);
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  set_autocast(device_type_, was_enabled_, was_type_);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

GradScaler::GradScaler(const torch::Device& device)
    : scale_(torch::full({1}, kInitialScale, torch::dtype(torch::kFloat32).device(device))),
      growth_tracker_(torch::zeros({1}, torch::dtype(torch::kInt32).device(device))),
      found_inf_(torch::zeros({1}, torch::dtype(torch::kFloat32).device(device))) {}

// An fp16 loss times the fp32 scale promotes to fp32 (the scale has a dimension): 65536 itself
// would not fit in fp16.
torch::Tensor GradScaler::scale(const torch::Tensor& loss) const { return (loss * scale_).reshape({}); }

bool GradScaler::unscale(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  found_inf_.zero_();
  // The reciprocal in double, as GradScaler does: 1/scale is exact for powers of two anyway.
  const torch::Tensor inv_scale = scale_.to(torch::kFloat64).reciprocal().to(torch::kFloat32);
  if (!grads.empty()) at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv_scale);
  return found_inf_.item<float>() == 0.0f;
}

void GradScaler::update() {
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, kGrowthFactor, kBackoffFactor, kGrowthInterval);
}

void GradScaler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("scale", scale_);
  archive.write("growth_tracker", growth_tracker_);
}

void GradScaler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor scale, growth_tracker;
  archive.read("scale", scale);
  archive.read("growth_tracker", growth_tracker);
  scale_.copy_(scale);
  growth_tracker_.copy_(growth_tracker);
}

}  // namespace chestlab

#include "chestlab/host/augment.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "chestlab/errors.h"
#include "chestlab/param_check.h"

namespace chestlab {

namespace {

ParamSpec probability(double def) {
  return param_float("p", def, "probability of applying this augmentation to a sample").range(0, 1);
}

// A uniform draw in [-range, range].
double symmetric(Rng& rng, double range) { return rng.uniform(-range, range); }

torch::Tensor clamp_unit(const torch::Tensor& t) { return torch::clamp(t, 0.0, 1.0); }

// ---- hflip ----

void horizontal_flip(Sample& s, const Params&, Rng&) {
  const auto width = s.image.size(-1);
  s.image = s.image.flip({-1});
  if (s.mask.defined()) s.mask = s.mask.flip({-1});
  if (s.boxes.defined() && s.boxes.numel() > 0) {
    auto boxes = s.boxes.clone();
    boxes.select(1, 0) = static_cast<double>(width) - s.boxes.select(1, 0) - s.boxes.select(1, 2);
    s.boxes = boxes;
  }
}

// ---- affine ----

Schema affine_schema() {
  return {
      probability(0.8),
      param_float("rotation", 6.0, "largest rotation in degrees; drawn uniformly in [-rotation, rotation]")
          .range(0, 180),
      param_float("shear", 4.0, "largest horizontal shear in degrees; drawn in [-shear, shear]").range(0, 45),
      param_float("scale", 0.15, "largest relative zoom; the factor is drawn in [1 - scale, 1 + scale]")
          .range(0, 0.9),
      param_float("shift", 0.05,
                  "largest shift as a fraction of width (horizontally) and height (vertically); "
                  "each drawn in [-shift, shift]")
          .range(0, 0.5),
      param_string("fill_mode", "nearest",
                   "what the image shows where the transform leaves it: `nearest` repeats the edge "
                   "pixel (Keras' default), `constant` uses `fill`")
          .one_of({"nearest", "constant"}),
      param_float("fill", 0.0, "image value outside the original image when fill_mode = \"constant\""),
  };
}

void random_affine(Sample& s, const Params& p, Rng& rng) {
  const std::int64_t height = s.image.size(-2), width = s.image.size(-1);
  // Always five draws in this order, so a range of 0 does not shift the others.
  AffineDraw draw;
  draw.rotation_deg = symmetric(rng, p.real("rotation"));
  draw.shear_deg = symmetric(rng, p.real("shear"));
  draw.scale = 1.0 + symmetric(rng, p.real("scale"));
  draw.shift_x = symmetric(rng, p.real("shift")) * static_cast<double>(width);
  draw.shift_y = symmetric(rng, p.real("shift")) * static_cast<double>(height);
  const BorderFill fill = p.str("fill_mode") == "constant" ? BorderFill::Constant : BorderFill::Nearest;
  warp_sample(s, affine_about_centre(draw, height, width), fill, p.real("fill"));
}

// ---- image-only intensity transforms ----

void random_gamma(Sample& s, const Params& p, Rng& rng) {
  const double gamma = std::exp(symmetric(rng, p.real("gamma")));
  s.image = clamp_unit(s.image).pow(gamma);
}

// Each H x W plane blurred into a new tensor; cv::Mat headers wrap the tensors' memory.
torch::Tensor gaussian_blur(const torch::Tensor& image, double sigma) {
  const torch::Tensor src = image.to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor dst = torch::empty_like(src);
  const int height = static_cast<int>(src.size(-2)), width = static_cast<int>(src.size(-1));
  const std::int64_t plane = static_cast<std::int64_t>(height) * width;
  for (std::int64_t offset = 0; offset < src.numel(); offset += plane) {
    const cv::Mat from(height, width, CV_32F, const_cast<float*>(src.data_ptr<float>()) + offset);
    cv::Mat to(height, width, CV_32F, dst.data_ptr<float>() + offset);
    // Size(0, 0): OpenCV derives the kernel size from sigma (about 8 sigma wide).
    cv::GaussianBlur(from, to, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT_101);
  }
  return dst;
}

void random_blur(Sample& s, const Params& p, Rng& rng) {
  s.image = gaussian_blur(s.image, rng.uniform(p.real("sigma_min"), p.real("sigma_max")));
}

std::string check_blur(const Params& p) {
  if (p.real("sigma_min") <= p.real("sigma_max")) return {};
  return fmt::format("sigma_min ({}) must not exceed sigma_max ({})", p.real("sigma_min"), p.real("sigma_max"));
}

void random_noise(Sample& s, const Params& p, Rng& rng) {
  const double stddev = rng.uniform(0.0, p.real("std_max"));
  const torch::Tensor image = s.image.to(torch::kCPU, torch::kFloat32).contiguous();
  // Drawn from Rng in memory order, so the noise is the same on every platform.
  torch::Tensor noise = torch::empty_like(image);
  float* out = noise.data_ptr<float>();
  for (std::int64_t i = 0; i < noise.numel(); ++i) out[i] = static_cast<float>(stddev * rng.normal());
  s.image = clamp_unit(image + noise);
}

void random_brightness_contrast(Sample& s, const Params& p, Rng& rng) {
  const double contrast = 1.0 + symmetric(rng, p.real("contrast"));
  const double brightness = symmetric(rng, p.real("brightness"));
  s.image = clamp_unit(s.image * contrast + brightness);
}

// Coarse salt and pepper: the image is cut into a grid of blocks, and a fraction of the
// blocks, chosen without replacement, becomes 1 (salt) or 0 (pepper).
void coarse_salt_pepper(Sample& s, const Params& p, Rng& rng) {
  const std::int64_t height = s.image.size(-2), width = s.image.size(-1);
  const std::int64_t block_h = std::max<std::int64_t>(1, std::llround(p.real("block_size") * height));
  const std::int64_t block_w = std::max<std::int64_t>(1, std::llround(p.real("block_size") * width));
  const std::int64_t rows = (height + block_h - 1) / block_h, cols = (width + block_w - 1) / block_w;
  std::vector<std::int64_t> cells(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < cells.size(); ++i) cells[i] = static_cast<std::int64_t>(i);
  const double amount = p.real("amount");
  const auto chosen = amount <= 0 ? std::size_t{0}
                                  : std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(amount * cells.size())),
                                                            1, cells.size());
  torch::Tensor image = s.image.clone();
  using torch::indexing::Slice;
  for (std::size_t k = 0; k < chosen; ++k) {
    // Partial Fisher-Yates: cells[k] becomes a uniformly chosen cell not yet used.
    std::swap(cells[k], cells[k + rng.below(cells.size() - k)]);
    const std::int64_t r = cells[k] / cols, c = cells[k] % cols;
    const double value = rng.chance(p.real("salt")) ? 1.0 : 0.0;
    image.index_put_({"...", Slice(r * block_h, std::min(height, (r + 1) * block_h)),
                      Slice(c * block_w, std::min(width, (c + 1) * block_w))},
                     value);
  }
  s.image = image;
}

std::vector<AugmentationSpec> make_specs() {
  std::vector<AugmentationSpec> specs;
  specs.push_back({"hflip", "mirror left-right (image, mask and boxes)", {probability(0.5)}, horizontal_flip, {}});
  specs.push_back({"affine",
                   "random rotation, shear, zoom and shift about the centre (image bilinear, mask nearest, "
                   "boxes through 8 points on their edges, clipped; boxes under 1 pixel dropped)",
                   affine_schema(), random_affine, {}});
  specs.push_back({"gamma", "image^gamma with log(gamma) uniform in [-gamma, gamma]; image clamped to [0, 1]",
                   {probability(0.5),
                    param_float("gamma", 0.25, "largest |log gamma|: 0.25 gives gamma in [0.78, 1.28]").range(0, 3)},
                   random_gamma, {}});
  specs.push_back({"blur", "Gaussian blur with sigma uniform in [sigma_min, sigma_max] pixels (image only)",
                   {probability(0.25), param_float("sigma_min", 0.5, "smallest sigma in pixels").range(0.1, 50),
                    param_float("sigma_max", 1.5, "largest sigma in pixels").range(0.1, 50)},
                   random_blur, check_blur});
  specs.push_back({"noise",
                   "additive Gaussian noise, std uniform in [0, std_max], per pixel; result clamped to [0, 1] "
                   "(image only)",
                   {probability(0.25), param_float("std_max", 0.03, "largest noise std (image units)").range(0, 1)},
                   random_noise, {}});
  specs.push_back({"brightness_contrast",
                   "x * c + b with c uniform in [1 - contrast, 1 + contrast], b in [-brightness, brightness]; "
                   "clamped to [0, 1] (image only)",
                   {probability(0.5), param_float("brightness", 0.1, "largest added offset").range(0, 1),
                    param_float("contrast", 0.2, "largest relative change of contrast").range(0, 1)},
                   random_brightness_contrast, {}});
  specs.push_back({"salt_pepper",
                   "coarse salt and pepper: a fraction of square-ish blocks set to 1 or 0 (image only)",
                   {probability(0.25),
                    param_float("amount", 0.02, "fraction of the blocks that are set (at least one when > 0)")
                        .range(0, 1),
                    param_float("block_size", 0.03, "block side as a fraction of image height and width")
                        .range(0.001, 1),
                    param_float("salt", 0.5, "fraction of the set blocks that become 1 (the rest become 0)")
                        .range(0, 1)},
                   coarse_salt_pepper, {}});
  return specs;
}

}  // namespace

const std::vector<AugmentationSpec>& augmentation_specs() {
  static const std::vector<AugmentationSpec> specs = make_specs();
  return specs;
}

const AugmentationSpec* find_augmentation(const std::string& name) {
  for (const auto& s : augmentation_specs())
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> augmentation_names() {
  std::vector<std::string> names;
  for (const auto& s : augmentation_specs()) names.push_back(s.name);
  return names;
}

AugmentPipeline::AugmentPipeline(const std::vector<AugmentConfig>& steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const AugmentConfig& step = steps[i];
    const std::string where = fmt::format("dataset.augment.{} (type \"{}\")", i, step.type);
    const AugmentationSpec* spec = find_augmentation(step.type);
    if (!spec) {
      const std::string hint = did_you_mean(step.type, augmentation_names());
      throw ConfigError(fmt::format("dataset.augment.{}: unknown augmentation \"{}\"{} (available: {})", i,
                                    step.type, hint.empty() ? "" : " (did you mean \"" + hint + "\"?)",
                                    fmt::join(augmentation_names(), ", ")));
    }
    Params params = check_params(spec->schema, step.params.values(), where);
    if (spec->check)
      if (std::string why = spec->check(params); !why.empty()) throw ConfigError(where + ": " + why);
    steps_.emplace_back(spec, std::move(params));
  }
}

void AugmentPipeline::apply(Sample& sample, std::uint64_t sample_seed) const {
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    // Each step draws from its own stream, so changing one step's parameters or
    // probability never changes what the other steps do to the same sample.
    Rng rng(mix_seed({sample_seed, i}));
    const auto& [spec, params] = steps_[i];
    if (rng.chance(params.real("p"))) spec->apply(sample, params, rng);
  }
}

}  // namespace chestlab

// Augmentations: composable transforms applied by the loader to training samples, each
// with a probability, configured as [[dataset.augment]] tables. Each one's randomness
// comes from an Rng seeded by (seed, fold, epoch, sample index), so the same run gives
// the same augmented batches however many workers load them.
//
// Built in: hflip, affine (geometry: image, mask and boxes move together) and the
// image-only gamma, blur, noise, brightness_contrast and salt_pepper, which leave masks
// and boxes alone. Intensity transforms assume images in [0, 1] and keep them there.
// No transform modifies the tensors it is given: each replaces them with new ones, so a
// dataset may hand out cached tensors.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/dataset.h"
#include "chestlab/rng.h"

namespace chestlab {

struct AugmentationSpec {
  std::string name;
  std::string description;
  Schema schema;  // always includes `p`, the probability of applying it
  // Transforms image, mask and boxes of `sample` consistently (called only when chosen).
  std::function<void(Sample& sample, const Params& params, Rng& rng)> apply;
  // Checks between parameters that a schema cannot express (e.g. sigma_min <= sigma_max).
  // Returns "" when the parameters are consistent, otherwise what is wrong. May be empty.
  std::function<std::string(const Params& params)> check;
};

const std::vector<AugmentationSpec>& augmentation_specs();
const AugmentationSpec* find_augmentation(const std::string& name);
std::vector<std::string> augmentation_names();

class AugmentPipeline {
 public:
  AugmentPipeline() = default;
  // Validates every step again (unknown type or parameter, values out of range,
  // inconsistent parameters) and fills defaults, so programmatic callers may give only
  // some parameters. Throws ConfigError naming the step as `dataset.augment.N`.
  explicit AugmentPipeline(const std::vector<AugmentConfig>& steps);
  bool empty() const { return steps_.empty(); }
  // Applies every step in order. `sample_seed` (from seed, fold, epoch and sample index)
  // decides both whether and how each step transforms the sample.
  void apply(Sample& sample, std::uint64_t sample_seed) const;

 private:
  std::vector<std::pair<const AugmentationSpec*, Params>> steps_;
};

// ---- Geometry of `affine`, public so that tests and tools can apply a known transform ----

// One draw of the affine augmentation, a transform about the image centre:
// scale, then shear, then rotate, then shift.
struct AffineDraw {
  double rotation_deg = 0;  // positive turns clockwise on screen (y points down)
  double shear_deg = 0;     // horizontal shear: x += tan(shear) * (y - centre y)
  double scale = 1;         // isotropic zoom factor
  double shift_x = 0;       // pixels
  double shift_y = 0;       // pixels
};

// x' = m[0] x + m[1] y + m[2],  y' = m[3] x + m[4] y + m[5], in continuous pixel
// coordinates: pixel (row i, column j) covers [j, j+1) x [i, i+1), as boxes do.
using AffineMatrix = std::array<double, 6>;

AffineMatrix affine_about_centre(const AffineDraw& draw, std::int64_t height, std::int64_t width);

enum class BorderFill {
  Constant,  // a fixed value outside the image (masks: 0)
  Nearest,   // the nearest edge pixel (cv::BORDER_REPLICATE), Keras' default fill_mode
};

enum class BoxWarp {
  // 8 points at 1/3 and 2/3 of each side. Boxes hold rounded objects (opacities, organs)
  // that touch their box near the middle of each side, so these points follow the
  // object's extent closely under rotation and shear.
  EdgePoints,
  // The 4 corners: exact for a rectangular object, but for a rounded one the box grows
  // with every rotation (by cos + sin of the angle per side).
  Corners,
};

// Boxes float32 [N, 4] (x, y, w, h) mapped through `m`: each replaced by the min/max box
// of its mapped points, clipped to the height x width image; boxes left with an area
// below 1 pixel are dropped. Returns float32 [M, 4], M <= N (possibly [0, 4]).
torch::Tensor warp_boxes(const torch::Tensor& boxes, const AffineMatrix& m, std::int64_t height,
                         std::int64_t width, BoxWarp method = BoxWarp::EdgePoints);

// Applies `m` to the whole sample: image bilinear, mask nearest-neighbour (kept 0/1),
// boxes by warp_boxes with EdgePoints. The output has the input's size.
void warp_sample(Sample& sample, const AffineMatrix& m, BorderFill fill, double fill_value = 0.0);

}  // namespace chestlab

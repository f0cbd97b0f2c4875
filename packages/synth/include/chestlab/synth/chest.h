// Procedural chest radiographs: a PA-view-like image (body, two lung fields, heart shadow,
// ribs, clavicles, spine, vessels, noise) with 0..N lung opacities, their mask and one box
// per opacity. Torch-free. Used by the `synthetic_cxr` dataset plugin, by tests that need
// realistic-looking inputs without the RSNA data, and (forced-boxes mode) by the synthetic
// RSNA corpus generator.
//
// Reproducibility: every random number comes from chestlab::Rng (rng.h) seeded from
// (seed, index) [and the patient for the anatomy], never from std:: distributions or
// cv::RNG. The OpenCV operations used on pixels (drawing, GaussianBlur, resize) run on 8- or
// 16-bit data, where OpenCV's fixed-point paths are bit-exact whatever SIMD the CPU has;
// float arithmetic is plain scalar C++. So the same (options, seed, index) give the same
// bytes on any x86-64 CPU; another OpenCV or libm version could differ in rare pixels.
// Thread-safe: no shared mutable state.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/box.h"

namespace chestlab::synth {

// Labels follow the three classes of RSNA's stage_2_detailed_class_info.csv.
enum ChestClass : int {
  kNormal = 0,
  kNotNormalNoOpacity = 1,  // diffuse, non-opacity findings (texture, large heart, effusion)
  kLungOpacity = 2,
};
// {"Normal", "No Lung Opacity / Not Normal", "Lung Opacity"}, indexed by ChestClass.
const std::vector<std::string>& chest_class_names();

struct ChestOptions {
  int size = 256;                  // output is size x size pixels; at least 32
  double positive_fraction = 0.5;  // free mode: share of images with >= 1 opacity (label 2)
  // Share of the opacity-free images that show diffuse non-opacity findings (label 1).
  // RSNA's stage-2 table has 11,821 such images against 8,851 normal ones: 0.57.
  double abnormal_fraction = 0.57;
  int max_opacities = 3;           // free mode: 1..max_opacities opacities on a positive image
  double noise = 0.03;             // std-dev of the per-pixel Gaussian noise, intensity units [0, 1]
};

struct ChestImage {
  cv::Mat image;      // CV_8UC1 size x size
  cv::Mat mask;       // CV_8UC1 0/1: union of the opacities
  cv::Mat lung_mask;  // CV_8UC1 0/1: the two lung fields (heart excluded)
  // One per opacity: the bounding box of that opacity's own pixels in `mask` (x, y = left/top
  // pixel edges, w, h = pixel counts), in the order they were drawn.
  std::vector<Box> boxes;
  int label = kNormal;  // ChestClass
};

// Throws std::invalid_argument naming the field and the allowed range.
void validate(const ChestOptions& options);

// The label generate_chest(options, seed, index) will have, without drawing anything:
// it reads the same first numbers of the same random stream.
int chest_label(const ChestOptions& options, std::uint64_t seed, std::uint64_t index);

// Free mode: the label, the number, size and place of opacities come from the random stream.
// Opacities lie inside the lung fields (they may reach the lung edge) and never touch each
// other, so each connected component of `mask` is one opacity.
// `patient`, when given, seeds the anatomy (body shape, lung size, ribs...) instead of
// `index`: images of one patient share their anatomy and differ in findings and position.
ChestImage generate_chest(const ChestOptions& options, std::uint64_t seed, std::uint64_t index,
                          std::optional<std::uint64_t> patient = std::nullopt);

// Forced-boxes mode: one opacity per given box (output-image pixels, e.g. RSNA boxes for
// size = 1024), filling most of it; the returned boxes are those of the drawn opacities
// (inside, and close to, the given ones). Boxes may lie anywhere in the image; partly
// outside boxes are clipped. `label` defaults to 2 with boxes and to the random stream's
// choice between 0 and 1 without; when given it must agree (2 with boxes, 0/1 without).
// Throws std::invalid_argument for a box with w or h <= 0, a box entirely outside the
// image, or a disagreeing label.
ChestImage generate_chest_with_boxes(const ChestOptions& options, std::uint64_t seed,
                                     std::uint64_t index, const std::vector<Box>& boxes,
                                     std::optional<int> label = std::nullopt,
                                     std::optional<std::uint64_t> patient = std::nullopt);

}  // namespace chestlab::synth

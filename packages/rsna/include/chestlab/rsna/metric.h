// The RSNA Pneumonia Detection Challenge metric: mean over images of the mean over IoU
// thresholds 0.40, 0.45, ..., 0.75 of TP / (TP + FP + FN). Torch-free, so the `score`
// command, the validation metric plugins and the tests share one definition.
//
// Rules (the competition's evaluation page and the public Kaggle kernels):
//  * Predictions of an image are ranked by confidence, descending. The sort is stable:
//    predictions with equal confidence keep their submission order.
//  * At each threshold t, each ground-truth box in turn (in truth order) takes the first
//    prediction in rank order that is not yet taken and whose IoU with it is >= t (a TP).
//    Unmatched truths are FN, untaken predictions FP.
//  * An image with neither truth nor predictions is skipped (not counted). An image with
//    predictions but no truth scores 0, as does one with truth but no predictions.
//  * The score is the mean over counted images.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <vector>

#include "chestlab/box.h"

namespace chestlab {

// A predicted box and its confidence: what detectors and boxes_from_mask() produce and
// what submission files hold.
namespace rsna {

constexpr std::size_t kThresholdCount = 8;

// 0.40, 0.45, ..., 0.75, each the double nearest the decimal value (computed as
// (40 + 5 i) / 100, not 0.40 + 0.05 i, which gives 0.6000000000000001 for i = 4).
const std::array<double, kThresholdCount>& map_thresholds();

// IoU counts as reaching a threshold when iou >= t - kIouTolerance. With integer pixel
// boxes IoU is a ratio of integers, so an IoU that equals a threshold exactly (0.5, 0.6)
// must match; the tolerance absorbs the rounding of coordinates that are not integers
// (e.g. scaled back from a 256-pixel mask) without changing any real decision.
constexpr double kIouTolerance = 1e-9;

// TP / (TP + FP + FN) of one image at one threshold. `predictions` is taken by value
// because it is sorted. Returns 1 when there is neither truth nor prediction (callers
// that follow the competition skip such images instead; see image_score()).
double image_precision(const std::vector<Box>& truth, std::vector<ScoredBox> predictions,
                       double threshold);

// Per-threshold values of one image, or nullopt when the image is skipped (no truth and
// no predictions).
std::optional<std::array<double, kThresholdCount>> image_precisions(
    const std::vector<Box>& truth, const std::vector<ScoredBox>& predictions);

// Mean over thresholds of image_precision(), or nullopt when the image is skipped.
std::optional<double> image_score(const std::vector<Box>& truth,
                                  const std::vector<ScoredBox>& predictions);

struct MapResult {
  double score = 0.0;                 // mean over counted images; 0 when none was counted
  std::vector<double> per_threshold;  // mean over counted images at each map_thresholds()
  std::size_t images_counted = 0;     // images with truth or predictions
  std::size_t images_skipped = 0;     // images with neither
};

// Accumulates images one at a time (e.g. a validation epoch, or a submission file).
class RsnaMapAccumulator {
 public:
  void add(const std::vector<Box>& truth, const std::vector<ScoredBox>& predictions);
  MapResult result() const;
  void reset();

 private:
  std::array<double, kThresholdCount> sums_{};
  std::size_t counted_ = 0;
  std::size_t skipped_ = 0;
};

}  // namespace rsna
}  // namespace chestlab

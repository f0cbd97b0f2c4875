#include "chestlab/detection/boxes_from_mask.h"

#include <fmt/format.h>

#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace chestlab {

namespace {

void check_inputs(const cv::Mat& probability, const BoxesFromMaskOptions& options,
                  const std::optional<double>& image_score) {
  if (probability.empty()) throw std::invalid_argument("boxes_from_mask: empty probability map");
  if (probability.type() != CV_32FC1)
    throw std::invalid_argument(fmt::format(
        "boxes_from_mask: probability map must be CV_32FC1 (float, one channel), got type {}",
        probability.type()));
  if (!(options.scale_x > 0) || !(options.scale_y > 0))
    throw std::invalid_argument(fmt::format(
        "boxes_from_mask: scale_x and scale_y must be > 0, got {} and {}", options.scale_x,
        options.scale_y));
  if (options.gate_threshold && !image_score)
    throw std::invalid_argument(
        "boxes_from_mask: gate_threshold is set but no image score was given");
}

double component_confidence(const cv::Mat& probability, const cv::Mat& labels, int label,
                            const cv::Rect& rect, BoxConfidence kind) {
  if (kind == BoxConfidence::Mean) return cv::mean(probability(rect))[0];
  // The component's own pixels only: another blob reaching into the rectangle must not
  // lend this box its confidence.
  double highest = 0.0;
  cv::Mat own_pixels = labels(rect) == label;
  cv::minMaxLoc(probability(rect), nullptr, &highest, nullptr, nullptr, own_pixels);
  return highest;
}

}  // namespace

std::vector<ScoredBox> boxes_from_mask(const cv::Mat& probability,
                                       const BoxesFromMaskOptions& options,
                                       std::optional<double> image_score) {
  check_inputs(probability, options, image_score);
  if (options.gate_threshold && *image_score < *options.gate_threshold) return {};

  cv::Mat foreground;
  cv::compare(probability, options.threshold, foreground, cv::CMP_GT);
  cv::Mat labels, stats, centroids;
  const int count = cv::connectedComponentsWithStats(foreground, labels, stats, centroids, 8, CV_32S);

  std::vector<ScoredBox> boxes;
  for (int label = 1; label < count; ++label) {  // label 0 is the background
    if (stats.at<int>(label, cv::CC_STAT_AREA) < options.min_area) continue;
    const cv::Rect rect(stats.at<int>(label, cv::CC_STAT_LEFT), stats.at<int>(label, cv::CC_STAT_TOP),
                        stats.at<int>(label, cv::CC_STAT_WIDTH),
                        stats.at<int>(label, cv::CC_STAT_HEIGHT));
    const double confidence =
        component_confidence(probability, labels, label, rect, options.confidence);
    boxes.push_back(ScoredBox{confidence,
                              Box{rect.x * options.scale_x, rect.y * options.scale_y,
                                  rect.width * options.scale_x, rect.height * options.scale_y}});
  }
  std::sort(boxes.begin(), boxes.end(), [](const ScoredBox& a, const ScoredBox& b) {
    return a.box.y != b.box.y ? a.box.y < b.box.y : a.box.x < b.box.x;
  });
  return boxes;
}

}  // namespace chestlab

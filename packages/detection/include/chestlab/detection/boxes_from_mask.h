// Post-processing for segmentation models on a detection task: a probability map becomes
// boxes, one per connected component of the thresholded map (the approach of the public
// "CNN segmentation + connected components" RSNA kernel).
#pragma once

#include <optional>
#include <vector>

#include "chestlab/box.h"

namespace cv {
class Mat;
}

namespace chestlab {

enum class BoxConfidence {
  // Mean probability over the box's whole rectangle, as the Kaggle kernel did
  // (np.mean(pred[y:y+h, x:x+w])): weak, ragged blobs get low confidence.
  Mean,
  // Highest probability among the component's own pixels.
  Max,
};

struct BoxesFromMaskOptions {
  double threshold = 0.5;  // a pixel is foreground when its probability is > threshold
  BoxConfidence confidence = BoxConfidence::Mean;
  // Components with fewer foreground pixels than this (in mask pixels, before scaling)
  // are dropped.
  double min_area = 0.0;
  // Image-level gate: when set, an image whose classifier score is below it gets no boxes.
  std::optional<double> gate_threshold;
  // Box coordinates are multiplied by these to map mask pixels back to the original image
  // (e.g. 1024.0 / 256 for a 256x256 mask of a 1024x1024 radiograph).
  double scale_x = 1.0;
  double scale_y = 1.0;
};

// `probability` is CV_32FC1, H x W, values in [0, 1]. Components use 8-connectivity
// (cv::connectedComponentsWithStats). A box spans its component's pixels: x, y are the
// left/top pixel edges and w, h the pixel counts, all times scale_x / scale_y. Boxes come
// sorted by top edge, then left edge (OpenCV's label order depends on its algorithm).
// `image_score` is required when options.gate_threshold is set.
// Throws std::invalid_argument for a wrong matrix type, empty matrix, non-positive
// scale, or a gate without an image score.
std::vector<ScoredBox> boxes_from_mask(const cv::Mat& probability,
                                       const BoxesFromMaskOptions& options = {},
                                       std::optional<double> image_score = std::nullopt);

}  // namespace chestlab

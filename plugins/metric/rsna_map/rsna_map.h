// rsna_map: the RSNA Pneumonia Detection Challenge's metric (chestlab::rsna, the same code
// as `chestlab score`) over a validation fold. A mask model's probability map becomes boxes
// through boxes_from_mask (the public kernel's connected components); a box model's boxes are
// used as they are. Boxes are compared in pixels of the model's input image: IoU does not
// change when both sides are scaled back to 1024.
#pragma once

#include <vector>

#include "chestlab/detection/boxes_from_mask.h"
#include "chestlab/metric.h"
#include "chestlab/rsna/metric.h"

namespace chestlab::rsna_map {

struct RsnaMapOptions {
  BoxesFromMaskOptions from_mask;  // threshold, confidence, min_area, gate (scale stays 1)
  double min_score = 0.0;          // predictions with a lower confidence are dropped
};

class RsnaMap : public Metric {
 public:
  explicit RsnaMap(RsnaMapOptions options) : options_(options) {}
  void reset() override { accumulator_.reset(); }
  // Throws ConfigError when the batch has no boxes, or the prediction neither a mask nor
  // boxes, or a gate is set but the model gives no image_prob.
  void update(const Prediction& prediction, const Batch& batch) override;
  // The mean over counted images (those with truth or predictions); 0 before any is counted.
  double compute() const override { return accumulator_.result().score; }
  rsna::MapResult result() const { return accumulator_.result(); }

  // The boxes scored for image `image`: the mask's connected components (threshold,
  // confidence, min_area, gate) or the box model's boxes, less those below min_score.
  bool makes_boxes() const override { return true; }
  std::vector<ScoredBox> boxes(const Prediction& prediction, std::int64_t image) const override;

 private:

  RsnaMapOptions options_;
  rsna::RsnaMapAccumulator accumulator_;
};

// Rows of an [N, 4] (x, y, w, h) tensor.
std::vector<Box> truth_boxes(const torch::Tensor& boxes);
// Rows of an [N, 5] (score, x, y, w, h) tensor.
std::vector<ScoredBox> scored_boxes(const torch::Tensor& boxes);

}  // namespace chestlab::rsna_map

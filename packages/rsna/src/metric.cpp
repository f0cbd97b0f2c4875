#include "chestlab/rsna/metric.h"

#include <algorithm>

namespace chestlab::rsna {

const std::array<double, kThresholdCount>& map_thresholds() {
  static const std::array<double, kThresholdCount> thresholds = [] {
    std::array<double, kThresholdCount> t{};
    for (std::size_t i = 0; i < kThresholdCount; ++i) t[i] = (40.0 + 5.0 * double(i)) / 100.0;
    return t;
  }();
  return thresholds;
}

static void sort_by_confidence(std::vector<ScoredBox>& predictions) {
  // Stable, so that equal confidences keep submission order (the tie rule documented in
  // the header; numpy's argsort()[::-1] in the Kaggle kernel would reverse them instead).
  std::stable_sort(predictions.begin(), predictions.end(),
                   [](const ScoredBox& a, const ScoredBox& b) { return a.score > b.score; });
}

// Same as image_precision() but for predictions already in rank order.
static double precision_of_ranked(const std::vector<Box>& truth,
                                  const std::vector<ScoredBox>& ranked, double threshold) {
  if (truth.empty() && ranked.empty()) return 1.0;
  std::vector<bool> taken(ranked.size(), false);
  std::size_t true_positives = 0;
  for (const Box& t : truth) {
    for (std::size_t j = 0; j < ranked.size(); ++j) {
      if (taken[j] || iou(t, ranked[j].box) < threshold - kIouTolerance) continue;
      taken[j] = true;
      ++true_positives;
      break;
    }
  }
  const std::size_t false_negatives = truth.size() - true_positives;
  const std::size_t false_positives = ranked.size() - true_positives;
  return double(true_positives) / double(true_positives + false_positives + false_negatives);
}

double image_precision(const std::vector<Box>& truth, std::vector<ScoredBox> predictions,
                       double threshold) {
  sort_by_confidence(predictions);
  return precision_of_ranked(truth, predictions, threshold);
}

std::optional<std::array<double, kThresholdCount>> image_precisions(
    const std::vector<Box>& truth, const std::vector<ScoredBox>& predictions) {
  if (truth.empty() && predictions.empty()) return std::nullopt;
  std::vector<ScoredBox> ranked = predictions;
  sort_by_confidence(ranked);
  std::array<double, kThresholdCount> values{};
  for (std::size_t i = 0; i < kThresholdCount; ++i)
    values[i] = precision_of_ranked(truth, ranked, map_thresholds()[i]);
  return values;
}

std::optional<double> image_score(const std::vector<Box>& truth,
                                  const std::vector<ScoredBox>& predictions) {
  auto values = image_precisions(truth, predictions);
  if (!values) return std::nullopt;
  double sum = 0.0;
  for (double v : *values) sum += v;
  return sum / double(kThresholdCount);
}

void RsnaMapAccumulator::add(const std::vector<Box>& truth,
                             const std::vector<ScoredBox>& predictions) {
  auto values = image_precisions(truth, predictions);
  if (!values) {
    ++skipped_;
    return;
  }
  for (std::size_t i = 0; i < kThresholdCount; ++i) sums_[i] += (*values)[i];
  ++counted_;
}

MapResult RsnaMapAccumulator::result() const {
  MapResult r;
  r.images_counted = counted_;
  r.images_skipped = skipped_;
  r.per_threshold.assign(kThresholdCount, 0.0);
  if (counted_ == 0) return r;
  double total = 0.0;
  for (std::size_t i = 0; i < kThresholdCount; ++i) {
    r.per_threshold[i] = sums_[i] / double(counted_);
    total += sums_[i];
  }
  // Mean over images of the mean over thresholds == mean of all image-threshold values.
  r.score = total / double(counted_ * kThresholdCount);
  return r;
}

void RsnaMapAccumulator::reset() { *this = RsnaMapAccumulator(); }

}  // namespace chestlab::rsna

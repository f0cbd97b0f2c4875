// Box ensembles: weighted boxes fusion against boxes fused by hand, NMS and concatenation,
// and what each does to the RSNA score when the folds agree.
#include <catch2/catch.hpp>

#include <limits>
#include <stdexcept>

#include "chestlab/detection/fusion.h"
#include "chestlab/rsna/metric.h"

using chestlab::Box;
using chestlab::ScoredBox;
namespace det = chestlab::detection;

namespace {

void check_box(const ScoredBox& got, double score, const Box& box) {
  INFO("got " << got.score << " (" << got.box.x << ", " << got.box.y << ", " << got.box.w << ", " << got.box.h << ")");
  CHECK(got.score == Approx(score));
  CHECK(got.box.x == Approx(box.x));
  CHECK(got.box.y == Approx(box.y));
  CHECK(got.box.w == Approx(box.w));
  CHECK(got.box.h == Approx(box.h));
}

// Two models. Sorted by confidence: a1 0.9, b2 0.8, a2 0.6, b1 0.6 (model A first on the tie),
// a3 0.5.
//   a1 (10, 10, 100, 100) and b1 (20, 20, 100, 100): IoU 90^2 / (2 * 100^2 - 90^2) = 0.681, one
//     cluster. Weights 0.9 and 0.6: x1 = (0.9 * 10 + 0.6 * 20) / 1.5 = 14, x2 = (0.9 * 110 +
//     0.6 * 120) / 1.5 = 114 (same for y): (14, 14, 100, 100); confidence mean 0.75, both models
//     saw it: 0.75 * 2 / 2 = 0.75.
//   b2 (600, 600, 40, 40): only model B saw it: 0.8 * 1 / 2 = 0.4.
//   a2 (300, 300, 50, 50): only model A: 0.6 / 2 = 0.3.
//   a3 (60, 60, 100, 100) overlaps the fused (14, 14, 100, 100) with IoU 54^2 / (2 * 100^2 -
//     54^2) = 0.171 < 0.55: a cluster of its own, 0.5 / 2 = 0.25.
const std::vector<std::vector<ScoredBox>> kTwoModels = {
    {{0.9, {10, 10, 100, 100}}, {0.6, {300, 300, 50, 50}}, {0.5, {60, 60, 100, 100}}},
    {{0.6, {20, 20, 100, 100}}, {0.8, {600, 600, 40, 40}}},
};

}  // namespace

TEST_CASE("weighted boxes fusion matches boxes fused by hand", "[detection][fusion]") {
  const auto fused = det::weighted_boxes_fusion(kTwoModels);
  REQUIRE(fused.size() == 4);
  check_box(fused[0], 0.75, {14, 14, 100, 100});
  check_box(fused[1], 0.4, {600, 600, 40, 40});
  check_box(fused[2], 0.3, {300, 300, 50, 50});
  check_box(fused[3], 0.25, {60, 60, 100, 100});
}

TEST_CASE("weighted boxes fusion averages every member of a cluster", "[detection][fusion]") {
  // Three models shifted 0, 10, 20 px. B joins A (IoU 9000 / 11000 = 0.82): x = (0.8 * 0 +
  // 0.4 * 10) / 1.2 = 3.33. C overlaps that with IoU 8333 / 11667 = 0.71 and joins:
  // x = (0 + 4 + 8) / 1.6 = 7.5, the weighted mean of all three. Confidence (0.8 + 0.4 + 0.4) / 3.
  const std::vector<std::vector<ScoredBox>> views = {
      {{0.8, {0, 0, 100, 100}}}, {{0.4, {10, 0, 100, 100}}}, {{0.4, {20, 0, 100, 100}}}};
  const auto fused = det::weighted_boxes_fusion(views);
  REQUIRE(fused.size() == 1);
  check_box(fused[0], 1.6 / 3.0, {7.5, 0, 100, 100});
}

TEST_CASE("weighted boxes fusion: a box joins the cluster it overlaps most", "[detection][fusion]") {
  // Clusters at x = 0 and x = 30 (IoU 70 / 130 = 0.54 < 0.55: apart). The box at x = 20 overlaps
  // the first with IoU 80 / 120 = 0.667 and the second with 90 / 110 = 0.818: it joins the
  // second, x = (0.8 * 30 + 0.6 * 20) / 1.4 = 25.71, confidence (0.8 + 0.6) / 2 = 0.7 (both models);
  // the first keeps 0.9 / 2 = 0.45 (one model).
  const std::vector<std::vector<ScoredBox>> views = {{{0.9, {0, 0, 100, 100}}, {0.8, {30, 0, 100, 100}}},
                                                     {{0.6, {20, 0, 100, 100}}}};
  const auto fused = det::weighted_boxes_fusion(views);
  REQUIRE(fused.size() == 2);
  check_box(fused[0], 0.7, {36.0 / 1.4, 0, 100, 100});
  check_box(fused[1], 0.45, {0, 0, 100, 100});
}

TEST_CASE("weighted boxes fusion: more boxes than models in a cluster", "[detection][fusion]") {
  // One model with two overlapping boxes: T = 2 > N = 1, so the factor is min(2, 1) / 1 = 1 and
  // the confidence stays the mean, (0.9 + 0.3) / 2 = 0.6. x = 0.3 * 10 / 1.2 = 2.5.
  const auto fused = det::weighted_boxes_fusion({{{0.9, {0, 0, 100, 100}}, {0.3, {10, 0, 100, 100}}}});
  REQUIRE(fused.size() == 1);
  check_box(fused[0], 0.6, {2.5, 0, 100, 100});
}

TEST_CASE("weighted boxes fusion: thresholds, empty views, unusable boxes", "[detection][fusion]") {
  SECTION("the IoU threshold decides what joins") {
    // a1 and b1 overlap with IoU 0.681: apart at 0.7, so five boxes.
    CHECK(det::weighted_boxes_fusion(kTwoModels, {0.7, 0.0}).size() == 5);
    CHECK(det::weighted_boxes_fusion(kTwoModels, {0.68, 0.0}).size() == 4);
  }
  SECTION("boxes below skip_below take no part, but N still counts both models") {
    const auto fused = det::weighted_boxes_fusion(kTwoModels, {0.55, 0.7});
    REQUIRE(fused.size() == 2);
    check_box(fused[0], 0.45, {10, 10, 100, 100});
    check_box(fused[1], 0.4, {600, 600, 40, 40});
  }
  SECTION("no boxes, or no views") {
    CHECK(det::weighted_boxes_fusion({{}, {}}).empty());
    CHECK(det::weighted_boxes_fusion({}).empty());
  }
  SECTION("boxes of confidence 0 are placed by their plain mean") {
    const auto fused = det::weighted_boxes_fusion({{{0.0, {0, 0, 100, 100}}}, {{0.0, {10, 0, 100, 100}}}});
    REQUIRE(fused.size() == 1);
    check_box(fused[0], 0.0, {5, 0, 100, 100});
  }
  SECTION("non-finite boxes are dropped") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto fused = det::weighted_boxes_fusion({{{nan, {0, 0, 100, 100}}, {0.5, {0, nan, 100, 100}}},
                                                   {{0.8, {0, 0, 100, 100}}}});
    REQUIRE(fused.size() == 1);
    check_box(fused[0], 0.4, {0, 0, 100, 100});
  }
  SECTION("options out of range are refused") {
    CHECK_THROWS_AS(det::weighted_boxes_fusion(kTwoModels, {0.0, 0.0}), std::invalid_argument);
    CHECK_THROWS_AS(det::weighted_boxes_fusion(kTwoModels, {1.5, 0.0}), std::invalid_argument);
    CHECK_THROWS_AS(det::weighted_boxes_fusion(kTwoModels, {0.5, 1.0}), std::invalid_argument);
    CHECK_THROWS_AS(det::nms_fusion(kTwoModels, {-0.1, 0.0}), std::invalid_argument);
  }
}

TEST_CASE("NMS and concatenation of views", "[detection][fusion]") {
  SECTION("nms keeps the best of each overlapping group, unchanged") {
    // b1 overlaps a1 with IoU 0.681 > 0.55 and is suppressed; the others overlap nothing above it.
    const auto kept = det::nms_fusion(kTwoModels);
    REQUIRE(kept.size() == 4);
    check_box(kept[0], 0.9, {10, 10, 100, 100});
    check_box(kept[1], 0.8, {600, 600, 40, 40});
    check_box(kept[2], 0.6, {300, 300, 50, 50});
    check_box(kept[3], 0.5, {60, 60, 100, 100});
  }
  SECTION("concat keeps all, best first, ties in view order") {
    const auto all = det::concatenate_views(kTwoModels);
    REQUIRE(all.size() == 5);
    check_box(all[2], 0.6, {300, 300, 50, 50});
    check_box(all[3], 0.6, {20, 20, 100, 100});
  }
  SECTION("method names") {
    for (auto m : {det::FuseMethod::Wbf, det::FuseMethod::Nms, det::FuseMethod::Concat})
      CHECK(det::parse_fuse_method(det::to_string(m)) == m);
    CHECK_FALSE(det::parse_fuse_method("WBF"));
    CHECK_FALSE(det::parse_fuse_method(""));
    CHECK(det::fuse_views(kTwoModels, det::FuseMethod::Concat).size() == 5);
    CHECK(det::fuse_views(kTwoModels, det::FuseMethod::Wbf).size() == 4);
  }
}

TEST_CASE("fusing folds that agree scores above concatenating them", "[detection][fusion][rsna]") {
  // Five folds each find both opacities of the image, shifted 0-4 px (IoU with the truth
  // >= 0.91, above every threshold 0.40 ... 0.75). Concatenated: 2 TP and 8 FP at every
  // threshold, 2 / 10 = 0.2. Fused: the two truths, 1.0, as each fold alone scores.
  const std::vector<Box> truth = {{100, 100, 200, 300}, {600, 200, 150, 250}};
  std::vector<std::vector<ScoredBox>> folds;
  for (int f = 0; f < 5; ++f) {
    std::vector<ScoredBox> fold;
    for (const Box& t : truth) fold.push_back({0.9 - 0.05 * f, {t.x + f, t.y - f, t.w, t.h}});
    folds.push_back(fold);
  }
  const double single = *chestlab::rsna::image_score(truth, folds[0]);
  const double concatenated = *chestlab::rsna::image_score(truth, det::concatenate_views(folds));
  const double wbf = *chestlab::rsna::image_score(truth, det::weighted_boxes_fusion(folds));
  const double nms = *chestlab::rsna::image_score(truth, det::nms_fusion(folds));
  CHECK(single == Approx(1.0));
  CHECK(concatenated == Approx(0.2));
  CHECK(wbf == Approx(1.0));
  CHECK(nms == Approx(1.0));
  CHECK(det::weighted_boxes_fusion(folds).size() == truth.size());
}

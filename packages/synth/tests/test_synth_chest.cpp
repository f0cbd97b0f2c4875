// Procedural chest radiographs: determinism, label frequencies, masks and boxes agree,
// opacities in the lungs, forced boxes, plausible intensities.
#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <stdexcept>

#include "chestlab/rng.h"
#include "chestlab/synth/chest.h"
#include "support.h"

using chestlab::Box;
using namespace chestlab::synth;

namespace {

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a != b) == 0;
}

ChestOptions options_of(int size, double positive_fraction = 0.5) {
  ChestOptions o;
  o.size = size;
  o.positive_fraction = positive_fraction;
  return o;
}

std::vector<cv::Rect> component_rects(const cv::Mat& mask) {
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  std::vector<cv::Rect> rects;
  for (int i = 1; i < n; ++i) {
    rects.emplace_back(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                       stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
  }
  return rects;
}

bool matches_within_one_pixel(const Box& b, const cv::Rect& r) {
  return std::abs(b.x - r.x) <= 1 && std::abs(b.y - r.y) <= 1 && std::abs(b.w - r.width) <= 1 &&
         std::abs(b.h - r.height) <= 1;
}

double mean_where(const cv::Mat& image, const cv::Mat& where) { return cv::mean(image, where)[0]; }

}  // namespace

TEST_CASE("synth chest: same seed and index give the same bytes, others differ", "[synth]") {
  const ChestOptions o = options_of(128, 0.7);
  for (std::uint64_t index : {0, 1, 7, 12345}) {
    const ChestImage a = generate_chest(o, 42, index);
    const ChestImage b = generate_chest(o, 42, index);
    REQUIRE(a.image.type() == CV_8UC1);
    REQUIRE(a.image.rows == 128);
    REQUIRE(a.image.cols == 128);
    CHECK(same_bytes(a.image, b.image));
    CHECK(same_bytes(a.mask, b.mask));
    CHECK(same_bytes(a.lung_mask, b.lung_mask));
    CHECK(a.label == b.label);
    REQUIRE(a.boxes.size() == b.boxes.size());
    for (std::size_t i = 0; i < a.boxes.size(); ++i) CHECK(a.boxes[i] == b.boxes[i]);
  }
  CHECK_FALSE(same_bytes(generate_chest(o, 42, 0).image, generate_chest(o, 42, 1).image));
  CHECK_FALSE(same_bytes(generate_chest(o, 42, 0).image, generate_chest(o, 43, 0).image));
}

TEST_CASE("synth chest: a patient's images share their anatomy", "[synth]") {
  const ChestOptions o = options_of(96);
  const ChestImage a = generate_chest(o, 5, 10, 3);
  const ChestImage b = generate_chest(o, 5, 11, 3);
  const ChestImage c = generate_chest(o, 5, 12, 4);
  // Same lung shape up to the small per-image pose change: far closer than another patient's.
  auto overlap = [](const cv::Mat& x, const cv::Mat& y) {
    return static_cast<double>(cv::countNonZero(x & y)) / cv::countNonZero(x | y);
  };
  CHECK(overlap(a.lung_mask, b.lung_mask) > overlap(a.lung_mask, c.lung_mask));
  CHECK_FALSE(same_bytes(a.image, b.image));
}

TEST_CASE("synth chest: label frequencies follow the options and chest_label predicts them", "[synth]") {
  ChestOptions o = options_of(48, 0.6);
  o.abnormal_fraction = 0.57;
  int counts[3] = {0, 0, 0};
  const int total = 400;
  for (int i = 0; i < total; ++i) {
    const ChestImage img = generate_chest(o, 7, i);
    REQUIRE(img.label == chest_label(o, 7, i));
    REQUIRE(img.label >= 0);
    REQUIRE(img.label <= 2);
    ++counts[img.label];
    if (img.label == kLungOpacity) {
      CHECK(!img.boxes.empty());
      CHECK(static_cast<int>(img.boxes.size()) <= o.max_opacities);
      CHECK(cv::countNonZero(img.mask) > 0);
    } else {
      CHECK(img.boxes.empty());
      CHECK(cv::countNonZero(img.mask) == 0);
    }
  }
  // Binomial standard deviation for 400 draws at p = 0.6 is 0.0245: 3.3 sigma tolerance.
  CHECK(std::abs(counts[kLungOpacity] / double(total) - 0.6) < 0.08);
  const int negatives = counts[kNormal] + counts[kNotNormalNoOpacity];
  CHECK(std::abs(counts[kNotNormalNoOpacity] / double(negatives) - 0.57) < 0.13);
  CHECK(chest_class_names().size() == 3);
  CHECK(chest_class_names()[kLungOpacity] == "Lung Opacity");
}

TEST_CASE("synth chest: each box is the bounding box of one opacity's connected component", "[synth]") {
  const ChestOptions o = options_of(128, 1.0);
  int multi = 0;
  for (int i = 0; i < 60; ++i) {
    const ChestImage img = generate_chest(o, 11, i);
    REQUIRE(img.label == kLungOpacity);
    REQUIRE(img.mask.type() == CV_8UC1);
    double lo, hi;
    cv::minMaxLoc(img.mask, &lo, &hi);
    CHECK(hi == 1.0);
    const auto rects = component_rects(img.mask);
    REQUIRE(rects.size() == img.boxes.size());
    if (rects.size() > 1) ++multi;
    for (const Box& b : img.boxes) {
      int hits = 0;
      for (const auto& r : rects) hits += matches_within_one_pixel(b, r);
      CHECK(hits == 1);
    }
  }
  CHECK(multi > 10);  // several opacities per image do occur
}

TEST_CASE("synth chest: opacities lie inside the lung fields", "[synth]") {
  const ChestOptions o = options_of(128, 1.0);
  for (int i = 0; i < 40; ++i) {
    const ChestImage img = generate_chest(o, 3, i);
    const double opacity = cv::countNonZero(img.mask);
    const double in_lung = cv::countNonZero(img.mask & img.lung_mask);
    REQUIRE(opacity > 0);
    CHECK(in_lung / opacity > 0.8);
  }
}

TEST_CASE("synth chest: forced boxes are drawn where they are given", "[synth]") {
  const ChestOptions o = options_of(256);
  chestlab::Rng rng(99);
  for (int i = 0; i < 30; ++i) {
    std::vector<Box> given;
    const int n = 1 + static_cast<int>(rng.below(3));
    for (int k = 0; k < n; ++k) {
      const double w = rng.uniform(12, 90), h = rng.uniform(12, 110);
      given.push_back({rng.uniform(0, 256 - w), rng.uniform(0, 256 - h), w, h});
    }
    const ChestImage img = generate_chest_with_boxes(o, 1, i, given);
    CHECK(img.label == kLungOpacity);
    REQUIRE(img.boxes.size() == given.size());
    for (std::size_t k = 0; k < given.size(); ++k) {
      INFO("image " << i << " box " << k);
      CHECK(chestlab::iou(img.boxes[k], given[k]) > 0.7);
    }
  }
  // An RSNA-sized image with a real-looking box.
  ChestOptions big = options_of(1024);
  const Box rsna{264.0, 152.0, 213.0, 379.0};
  const ChestImage img = generate_chest_with_boxes(big, 1, 0, {rsna});
  REQUIRE(img.boxes.size() == 1);
  CHECK(chestlab::iou(img.boxes[0], rsna) > 0.7);
  CHECK(img.mask.rows == 1024);

  // Without boxes the label is 0 or 1, or the one asked for.
  CHECK(generate_chest_with_boxes(o, 1, 0, {}).label != kLungOpacity);
  CHECK(generate_chest_with_boxes(o, 1, 0, {}, kNotNormalNoOpacity).label == kNotNormalNoOpacity);
  CHECK_THROWS_AS(generate_chest_with_boxes(o, 1, 0, {}, kLungOpacity), std::invalid_argument);
  CHECK_THROWS_AS(generate_chest_with_boxes(o, 1, 0, {{10, 10, 0, 5}}), std::invalid_argument);
  CHECK_THROWS_AS(generate_chest_with_boxes(o, 1, 0, {{300, 10, 20, 20}}), std::invalid_argument);
}

TEST_CASE("synth chest: lungs are darker than the mediastinum, and masks are 0/1", "[synth]") {
  const ChestOptions o = options_of(128, 0.0);
  for (int i = 0; i < 20; ++i) {
    const ChestImage img = generate_chest(o, 17, i);
    const int s = o.size;
    cv::Mat mediastinum = cv::Mat::zeros(s, s, CV_8U);
    mediastinum(cv::Rect(s * 47 / 100, s * 30 / 100, s * 6 / 100, s * 30 / 100)).setTo(1);
    mediastinum &= (img.lung_mask == 0);
    REQUIRE(cv::countNonZero(mediastinum) > 20);
    const double lungs = mean_where(img.image, img.lung_mask);
    const double centre = mean_where(img.image, mediastinum);
    INFO("image " << i << ": lungs " << lungs << ", mediastinum " << centre);
    CHECK(lungs < centre - 30.0);
    const double area = cv::countNonZero(img.lung_mask) / double(s * s);
    CHECK(area > 0.2);  // two large lung fields...
    CHECK(area < 0.6);  // ...not the whole image
    double lo, hi;
    cv::minMaxLoc(img.lung_mask, &lo, &hi);
    CHECK(hi == 1.0);
  }
}

TEST_CASE("synth chest: options are validated", "[synth]") {
  ChestOptions o;
  o.size = 16;
  CHECK_THROWS_AS(generate_chest(o, 0, 0), std::invalid_argument);
  o = ChestOptions{};
  o.positive_fraction = 1.5;
  CHECK_THROWS_AS(chest_label(o, 0, 0), std::invalid_argument);
  o = ChestOptions{};
  o.max_opacities = 0;
  CHECK_THROWS_AS(generate_chest(o, 0, 0), std::invalid_argument);
}

// Writes a 256 px sample of each class (and its mask overlay) for a person to look at.
TEST_CASE("synth chest: sample PNGs round-trip", "[synth]") {
  const auto dir = chestlab::test::scratch_dir("synth_chest");
  ChestOptions o = options_of(256);
  cv::Mat row;
  for (int label : {kNormal, kNotNormalNoOpacity, kLungOpacity}) {
    for (std::uint64_t i = 0;; ++i) {
      if (chest_label(o, 2024, i) != label) continue;
      const ChestImage img = generate_chest(o, 2024, i);
      row = row.empty() ? img.image : [&] { cv::Mat m; cv::hconcat(row, img.image, m); return m; }();
      const std::string path = (dir / ("chest_label" + std::to_string(label) + ".png")).string();
      REQUIRE(cv::imwrite(path, img.image));
      CHECK(same_bytes(cv::imread(path, cv::IMREAD_GRAYSCALE), img.image));
      break;
    }
  }
  REQUIRE(cv::imwrite((dir / "chest_classes.png").string(), row));
}

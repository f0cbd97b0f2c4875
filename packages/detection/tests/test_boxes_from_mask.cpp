// Boxes from a probability map: connected components, confidences, filters, scaling.
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>

#include "chestlab/detection/boxes_from_mask.h"

using chestlab::BoxConfidence;
using chestlab::Box;
using chestlab::boxes_from_mask;
using chestlab::BoxesFromMaskOptions;

namespace {

// 8 rows x 10 columns, zero except:
//   blob A, a 2x2 square at rows 1-2, cols 1-2: 0.6 0.8 / 0.7 1.0
//     box (1, 1, 2, 2); mean over the box = 3.1 / 4 = 0.775; max 1.0; 4 pixels.
//   blob B, a diagonal (4,5)=0.9, (5,6)=0.6, (6,7)=0.6: one component only with
//     8-connectivity; box (5, 4, 3, 3). Its rectangle also holds (5,5)=0.3 (below the
//     threshold): mean over the box = (0.9 + 0.6 + 0.6 + 0.3) / 9 = 2.4 / 9; max 0.9; 3 pixels.
//   (0,9) = 0.5: exactly the threshold, so not foreground (a pixel must be > threshold).
cv::Mat two_blobs() {
  cv::Mat p = cv::Mat::zeros(8, 10, CV_32F);
  p.at<float>(1, 1) = 0.6f;
  p.at<float>(1, 2) = 0.8f;
  p.at<float>(2, 1) = 0.7f;
  p.at<float>(2, 2) = 1.0f;
  p.at<float>(4, 5) = 0.9f;
  p.at<float>(5, 6) = 0.6f;
  p.at<float>(6, 7) = 0.6f;
  p.at<float>(5, 5) = 0.3f;
  p.at<float>(0, 9) = 0.5f;
  return p;
}

}  // namespace

TEST_CASE("boxes_from_mask: one box per 8-connected component", "[boxes]") {
  const auto boxes = boxes_from_mask(two_blobs());
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].box == Box{1, 1, 2, 2});
  CHECK(boxes[1].box == Box{5, 4, 3, 3});
}

TEST_CASE("boxes_from_mask: mean and max confidence", "[boxes]") {
  BoxesFromMaskOptions options;
  SECTION("mean over the box rectangle (default, as the Kaggle kernel)") {
    const auto boxes = boxes_from_mask(two_blobs(), options);
    REQUIRE(boxes.size() == 2);
    CHECK(boxes[0].score == Approx(0.775).epsilon(1e-6));
    CHECK(boxes[1].score == Approx(2.4 / 9.0).epsilon(1e-6));
  }
  SECTION("max over the component") {
    options.confidence = BoxConfidence::Max;
    const auto boxes = boxes_from_mask(two_blobs(), options);
    REQUIRE(boxes.size() == 2);
    CHECK(boxes[0].score == Approx(1.0));
    CHECK(boxes[1].score == Approx(0.9).epsilon(1e-6));
  }
  SECTION("max ignores another component reaching into the rectangle") {
    // An L (row 0 and column 0 of a 4x4 corner, all 0.6) and a lone 0.95 pixel at (3,3),
    // inside the L's rectangle but not 8-connected to it.
    cv::Mat p = cv::Mat::zeros(5, 5, CV_32F);
    for (int i = 0; i < 4; ++i) p.at<float>(0, i) = p.at<float>(i, 0) = 0.6f;
    p.at<float>(3, 3) = 0.95f;
    options.confidence = BoxConfidence::Max;
    const auto boxes = boxes_from_mask(p, options);
    REQUIRE(boxes.size() == 2);
    CHECK(boxes[0].box == Box{0, 0, 4, 4});
    CHECK(boxes[0].score == Approx(0.6).epsilon(1e-6));
    CHECK(boxes[1].box == Box{3, 3, 1, 1});
    CHECK(boxes[1].score == Approx(0.95).epsilon(1e-6));
  }
}

TEST_CASE("boxes_from_mask: threshold", "[boxes]") {
  BoxesFromMaskOptions options;
  options.threshold = 0.65;  // A keeps 0.8, 0.7, 1.0 (still one 8-connected blob); B keeps 0.9
  const auto boxes = boxes_from_mask(two_blobs(), options);
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].box == Box{1, 1, 2, 2});
  CHECK(boxes[1].box == Box{5, 4, 1, 1});
  CHECK(boxes[1].score == Approx(0.9).epsilon(1e-6));
  options.threshold = 0.4;  // now (0,9) = 0.5 is foreground too
  CHECK(boxes_from_mask(two_blobs(), options).size() == 3);
}

TEST_CASE("boxes_from_mask: min_area drops small components", "[boxes]") {
  BoxesFromMaskOptions options;
  options.min_area = 3;
  CHECK(boxes_from_mask(two_blobs(), options).size() == 2);
  options.min_area = 4;  // B has 3 pixels (its 9-pixel rectangle does not count)
  const auto boxes = boxes_from_mask(two_blobs(), options);
  REQUIRE(boxes.size() == 1);
  CHECK(boxes[0].box == Box{1, 1, 2, 2});
  options.min_area = 5;
  CHECK(boxes_from_mask(two_blobs(), options).empty());
}

TEST_CASE("boxes_from_mask: image-level gate", "[boxes]") {
  BoxesFromMaskOptions options;
  options.gate_threshold = 0.5;
  CHECK(boxes_from_mask(two_blobs(), options, 0.49).empty());
  CHECK(boxes_from_mask(two_blobs(), options, 0.5).size() == 2);
  CHECK(boxes_from_mask(two_blobs(), options, 0.9).size() == 2);
  CHECK_THROWS_AS(boxes_from_mask(two_blobs(), options), std::invalid_argument);
  // Without a gate an image score is ignored.
  CHECK(boxes_from_mask(two_blobs(), BoxesFromMaskOptions{}, 0.0).size() == 2);
}

TEST_CASE("boxes_from_mask: scaling to original coordinates", "[boxes]") {
  BoxesFromMaskOptions options;
  options.scale_x = 1024.0 / 256;
  options.scale_y = 2.0;
  const auto boxes = boxes_from_mask(two_blobs(), options);
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].box == Box{4, 2, 8, 4});
  CHECK(boxes[1].box == Box{20, 8, 12, 6});
  CHECK(boxes[0].score == Approx(0.775).epsilon(1e-6));  // scaling leaves confidences alone
  options.scale_x = 0;
  CHECK_THROWS_AS(boxes_from_mask(two_blobs(), options), std::invalid_argument);
}

TEST_CASE("boxes_from_mask: rejects wrong inputs and handles empty maps", "[boxes]") {
  CHECK_THROWS_AS(boxes_from_mask(cv::Mat::zeros(4, 4, CV_8U)), std::invalid_argument);
  CHECK_THROWS_AS(boxes_from_mask(cv::Mat::zeros(4, 4, CV_32FC3)), std::invalid_argument);
  CHECK_THROWS_AS(boxes_from_mask(cv::Mat()), std::invalid_argument);
  CHECK(boxes_from_mask(cv::Mat::zeros(4, 4, CV_32F)).empty());
  // A map that is foreground everywhere is one box covering the image.
  const auto whole = boxes_from_mask(cv::Mat::ones(4, 6, CV_32F));
  REQUIRE(whole.size() == 1);
  CHECK(whole[0].box == Box{0, 0, 6, 4});
  CHECK(whole[0].score == Approx(1.0));
}

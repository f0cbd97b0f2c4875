// read_tiff (libtiff) against TIFFs written here with libtiff directly, in every sample type.
#include <catch2/catch.hpp>
#include <tiffio.h>

#include <opencv2/core.hpp>

#include <filesystem>
#include <fstream>

#include "chestlab/errors.h"
#include "chestlab/imaging/tiff.h"
#include "support.h"
#include "tiff_writer.h"

namespace fs = std::filesystem;
using chestlab::DataError;
using chestlab::read_tiff;

namespace {

// A 5 x 7 ramp through the type's range, negative values included for signed types.
cv::Mat ramp(int type, double lo, double hi) {
  cv::Mat m(5, 7, type);
  cv::Mat f(5, 7, CV_64F);
  for (int k = 0; k < 35; ++k) f.at<double>(k / 7, k % 7) = lo + (hi - lo) * k / 34.0;
  f.convertTo(m, type);
  return m;
}

std::string message_of(const std::string& path) {
  try {
    read_tiff(path);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("read_tiff: every sample type round trips exactly", "[tiff]") {
  const fs::path dir = chestlab::test::scratch_dir("read_tiff_types");
  struct Case {
    const char* name;
    int type;
    double lo, hi;
  };
  const Case cases[] = {{"u8", CV_8U, 0, 255},          {"s8", CV_8S, -128, 127},
                        {"u16", CV_16U, 0, 65535},      {"s16", CV_16S, -1024, 3071},
                        {"s32", CV_32S, -100000, 9e5},  {"f32", CV_32F, -1000.25, 2000.5},
                        {"f64", CV_64F, -1e-3, 1e300}};
  for (const Case& c : cases) {
    for (int compression : {COMPRESSION_NONE, COMPRESSION_LZW}) {
      INFO(c.name << " compression " << compression);
      const cv::Mat original = ramp(c.type, c.lo, c.hi);
      const std::string path = (dir / (std::string(c.name) + std::to_string(compression) + ".tif")).string();
      chestlab::test::write_test_tiff(path, original, compression);
      const cv::Mat back = read_tiff(path);
      REQUIRE(back.type() == c.type);
      REQUIRE(back.size() == original.size());
      CHECK(cv::norm(back, original, cv::NORM_INF) == 0.0);
    }
  }
}

TEST_CASE("read_tiff: tiled files with partial edge tiles", "[tiff]") {
  const fs::path dir = chestlab::test::scratch_dir("read_tiff_tiled");
  cv::Mat original(40, 37, CV_16S);
  for (int y = 0; y < original.rows; ++y)
    for (int x = 0; x < original.cols; ++x) original.at<int16_t>(y, x) = static_cast<int16_t>(y * 100 - x * 7 - 900);
  const std::string path = (dir / "tiled.tif").string();
  chestlab::test::write_test_tiff(path, original, COMPRESSION_NONE, 16);
  const cv::Mat back = read_tiff(path);
  REQUIRE(back.type() == CV_16S);
  CHECK(cv::norm(back, original, cv::NORM_INF) == 0.0);
}

TEST_CASE("read_tiff: errors name the file", "[tiff]") {
  const fs::path dir = chestlab::test::scratch_dir("read_tiff_errors");
  CHECK_THAT(message_of((dir / "missing.tif").string()), Catch::Contains("missing.tif") && Catch::Contains("no such file"));

  std::ofstream(dir / "junk.tif") << "this is not a TIFF";
  CHECK_THAT(message_of((dir / "junk.tif").string()), Catch::Contains("junk.tif") && Catch::Contains("TIFF"));

  // A real TIFF cut short in its pixel data.
  cv::Mat big(64, 64, CV_16U, cv::Scalar(1234));
  const std::string whole = (dir / "whole.tif").string();
  chestlab::test::write_test_tiff(whole, big);
  const auto size = fs::file_size(whole);
  fs::copy_file(whole, dir / "cut.tif");
  fs::resize_file(dir / "cut.tif", size / 3);
  CHECK_THAT(message_of((dir / "cut.tif").string()), Catch::Contains("cut.tif"));

  cv::Mat rgb(4, 4, CV_8UC3, cv::Scalar(1, 2, 3));
  chestlab::test::write_test_tiff((dir / "rgb.tif").string(), rgb);
  CHECK_THAT(message_of((dir / "rgb.tif").string()),
             Catch::Contains("rgb.tif") && Catch::Contains("3 samples per pixel"));

  CHECK(chestlab::is_tiff_file(whole));
  CHECK_FALSE(chestlab::is_tiff_file((dir / "junk.tif").string()));
  CHECK_FALSE(chestlab::is_tiff_file((dir / "missing.tif").string()));
}

TEST_CASE("read_tiff: the shared lung CT slices and masks", "[tiff]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path images = data / "lung-ct" / "2d_images", masks = data / "lung-ct" / "2d_masks";
  REQUIRE(fs::is_directory(images));
  const fs::path first = images / "ID_0002_Z_0162.tif";
  const cv::Mat ct = read_tiff(first.string());
  CHECK(ct.type() == CV_16S);
  CHECK(ct.rows == 512);
  CHECK(ct.cols == 512);
  double lo = 0, hi = 0;
  cv::minMaxLoc(ct, &lo, &hi);
  CHECK(lo < -500);  // air in Hounsfield units
  CHECK(hi > 100);   // bone
  const cv::Mat mask = read_tiff((masks / "ID_0002_Z_0162.tif").string());  // LZW-compressed
  CHECK(mask.type() == CV_8U);
  cv::minMaxLoc(mask, &lo, &hi);
  CHECK(lo == 0);
  CHECK(hi == 1);
}

// The lung_ct dataset plugin: pairing, TIFF/PNG decoding, normalisation, resizing, masks,
// errors naming files, the shared subset, and the notebook's augmentations on its samples.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>

#include "chestlab/errors.h"
#include "chestlab/host/augment.h"
#include "chestlab/host/registry.h"
#include "torch_helpers.h"
#include "chestlab/imaging/image_ops.h"
#include "support.h"
#include "tiff_writer.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

const PluginRegistry& registry() { return test::plugins(); }

std::shared_ptr<Dataset> make_lung_ct(const fs::path& images, const fs::path& masks,
                                      std::map<std::string, ParamValue> given = {}) {
  given["images"] = images.string();
  given["masks"] = masks.string();
  const auto& reg = registry();
  return reg.make_dataset("lung_ct", reg.params_for(Kind::Dataset, "lung_ct", given), DatasetContext{});
}

// A 32 x 32 "slice": a bright disc (the lung mask) on a ramp, in the given depth.
cv::Mat slice(int type, double lo, double hi) {
  cv::Mat f(32, 32, CV_64F);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const bool inside = (y - 16) * (y - 16) + (x - 12) * (x - 12) < 64;
      f.at<double>(y, x) = inside ? hi : lo + (hi - lo) * 0.3 * x / 31.0;
    }
  cv::Mat out;
  f.convertTo(out, type);
  return out;
}

cv::Mat disc_mask(int on) {
  cv::Mat m(32, 32, CV_8U, cv::Scalar(0));
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      if ((y - 16) * (y - 16) + (x - 12) * (x - 12) < 64) m.at<uchar>(y, x) = static_cast<uchar>(on);
  return m;
}

std::string data_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no DataError)";
}

}  // namespace

TEST_CASE("lung_ct: TIFF in each pixel type and PNG, min-max normalised and resized", "[lung_ct]") {
  const fs::path dir = test::scratch_dir("lung_ct_types");
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "masks");
  test::write_test_tiff((dir / "images/a_int16.tif").string(), slice(CV_16S, -1024, 400));
  test::write_test_tiff((dir / "images/b_uint16.tif").string(), slice(CV_16U, 0, 4000));
  test::write_test_tiff((dir / "images/c_uint8.tiff").string(), slice(CV_8U, 10, 200), COMPRESSION_LZW);
  test::write_test_tiff((dir / "images/d_float.tif").string(), slice(CV_32F, -0.5, 0.75));
  write_png((dir / "images/e_png.png").string(), slice(CV_8U, 0, 255));
  // Masks: 0/1 and 0/255, TIFF and PNG.
  test::write_test_tiff((dir / "masks/a_int16.tif").string(), disc_mask(1), COMPRESSION_LZW);
  test::write_test_tiff((dir / "masks/b_uint16.tif").string(), disc_mask(255));
  test::write_test_tiff((dir / "masks/c_uint8.tiff").string(), disc_mask(1));
  test::write_test_tiff((dir / "masks/d_float.tif").string(), disc_mask(255));
  write_png((dir / "masks/e_png.png").string(), disc_mask(255));
  std::ofstream(dir / "images" / "README.txt") << "not an image: ignored";

  auto ds = make_lung_ct(dir / "images", dir / "masks", {{"image_size", std::int64_t{16}}});
  REQUIRE(ds->size() == 5);
  CHECK(ds->class_names() == std::vector<std::string>{"lung"});
  const cv::Mat expected_mask = resize_mask(disc_mask(1), 16, 16);
  for (std::size_t i = 0; i < ds->size(); ++i) {
    const Sample s = ds->get(i);
    INFO(s.id);
    CHECK(s.id == ds->info(i).id);
    CHECK(s.image.sizes() == torch::IntArrayRef({1, 16, 16}));
    CHECK(s.image.dtype() == torch::kFloat32);
    CHECK(s.image.min().item<float>() == Approx(0.0f).margin(1e-6));  // per-image min-max
    CHECK(s.image.max().item<float>() == Approx(1.0f));
    CHECK(s.original_height == 32);
    REQUIRE(s.mask.sizes() == torch::IntArrayRef({1, 16, 16}));
    // Nearest-neighbour: exactly the resized 0/1 disc, whatever 0/1 or 0/255 it was stored as.
    const torch::Tensor expected = torch::from_blob(expected_mask.data, {1, 16, 16}, torch::kUInt8).to(torch::kFloat32);
    CHECK(torch::equal(s.mask, expected));
    // The disc is the brightest region: the image's top values are inside the mask.
    CHECK(s.image.masked_select(s.mask > 0.5).mean().item<float>() > 0.8f);
  }
  CHECK(ds->info(0).id == "a_int16");  // file-name order
  CHECK(ds->info(4).id == "e_png");

  // Lanczos in one step (the notebook) versus area shrinking: both [0, 1], not identical.
  auto area = make_lung_ct(dir / "images", dir / "masks",
                           {{"image_size", std::int64_t{16}}, {"interpolation", std::string("area")}});
  CHECK_FALSE(torch::equal(area->get(0).image, ds->get(0).image));
  const cv::Mat raw = slice(CV_16S, -1024, 400);
  cv::Mat f, lanczos;
  raw.convertTo(f, CV_32F);
  cv::resize(f, lanczos, cv::Size(16, 16), 0, 0, cv::INTER_LANCZOS4);
  const cv::Mat unit = normalize_minmax(lanczos);
  const torch::Tensor want = torch::from_blob(const_cast<float*>(unit.ptr<float>()), {1, 16, 16});
  CHECK(torch::allclose(ds->get(0).image, want));

  // HU window -300 +- 300: -1024 (air) below it -> 0; the disc at 400 HU above it -> 1.
  auto windowed = make_lung_ct(dir / "images", dir / "masks",
                               {{"image_size", std::int64_t{32}}, {"window", std::vector<double>{-300, 600}}});
  const Sample w = windowed->get(0);
  CHECK(w.image[0][16][12].item<float>() == Approx(1.0f));
  CHECK(w.image[0][0][0].item<float>() == Approx(0.0f).margin(1e-6));
  CHECK(w.image[0][0][31].item<float>() > 0.0f);  // -1024 + 0.3 * 1424 = -597 HU: just inside
}

TEST_CASE("lung_ct: a window that is not [center, width >= 1] is refused by the schema", "[lung_ct]") {
  const std::map<std::string, ParamValue> folders = {{"images", std::string("images")}, {"masks", std::string("masks")}};
  auto with_window = [&](std::vector<double> window) {
    auto given = folders;
    given["window"] = std::move(window);
    return registry().params_for(Kind::Dataset, "lung_ct", given);
  };
  CHECK_THROWS_WITH(with_window({-600}), "dataset 'lung_ct': window: expected [] (per-image min-max) or [center, "
                                         "width] with width >= 1, got [-600.0]");
  CHECK_THROWS_AS(with_window({-600, 0.5}), ConfigError);
  CHECK(with_window({-600, 1500}).reals("window") == std::vector<double>{-600, 1500});
  CHECK(with_window({}).reals("window").empty());
}

TEST_CASE("lung_ct: unpaired, corrupt and non-binary files are named", "[lung_ct]") {
  const fs::path dir = test::scratch_dir("lung_ct_errors");
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "masks");
  for (const char* name : {"p1.tif", "p2.tif", "only_image.tif"})
    test::write_test_tiff((dir / "images" / name).string(), slice(CV_16S, -1000, 300));
  for (const char* name : {"p1.tif", "p2.tif", "only_mask.png"}) write_png((dir / "masks" / name).string(), disc_mask(1));
  const std::string unpaired = data_error([&] { make_lung_ct(dir / "images", dir / "masks"); });
  CHECK_THAT(unpaired, Catch::Contains("only_image.tif") && Catch::Contains("only_mask.png") &&
                           Catch::Contains("without a mask") && Catch::Contains("without an image"));
  fs::remove(dir / "images" / "only_image.tif");
  fs::remove(dir / "masks" / "only_mask.png");

  CHECK_THAT(data_error([&] { make_lung_ct(dir / "nowhere", dir / "masks"); }), Catch::Contains("nowhere"));

  // A corrupt image is named when decoded.
  std::ofstream(dir / "images" / "p2.tif", std::ios::trunc) << "garbage, not a TIFF";
  auto ds = make_lung_ct(dir / "images", dir / "masks", {{"image_size", std::int64_t{16}}});
  REQUIRE(ds->size() == 2);
  CHECK_NOTHROW(ds->get(0));
  CHECK_THAT(data_error([&] { ds->get(1); }), Catch::Contains("p2.tif"));

  // A mask with a third value, and a mask of another size than its image.
  test::write_test_tiff((dir / "images" / "p2.tif").string(), slice(CV_16S, -1000, 300));
  cv::Mat three = disc_mask(255);
  three.at<uchar>(3, 5) = 7;
  write_png((dir / "masks" / "p2.tif").string(), three);  // PNG bytes behind a .tif name: decoded by content
  CHECK_THAT(data_error([&] { ds->get(1); }), Catch::Contains("p2.tif") && Catch::Contains("is 7"));
  test::write_test_tiff((dir / "masks" / "p2.tif").string(), three);
  CHECK_THAT(data_error([&] { ds->get(1); }),
             Catch::Contains("masks/p2.tif") && Catch::Contains("0/1 or 0/255") && Catch::Contains("is 7"));
  test::write_test_tiff((dir / "masks" / "p2.tif").string(), cv::Mat(8, 8, CV_8U, cv::Scalar(0)));
  CHECK_THAT(data_error([&] { ds->get(1); }), Catch::Contains("8x8"));
}

TEST_CASE("lung_ct: the notebook's augmentations move image and mask together", "[lung_ct][augment]") {
  const fs::path dir = test::scratch_dir("lung_ct_augment");
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "masks");
  test::write_test_tiff((dir / "images/x.tif").string(), slice(CV_16S, -1024, 400));
  test::write_test_tiff((dir / "masks/x.tif").string(), disc_mask(1));
  auto ds = make_lung_ct(dir / "images", dir / "masks", {{"image_size", std::int64_t{32}}});
  // Keras ImageDataGenerator(rotation_range=10, width_shift_range=0.1, height_shift_range=0.1,
  // zoom_range=0.1, fill_mode='nearest') as chestlab's affine augmentation.
  AugmentConfig affine{"affine", Params({{"p", 1.0},
                                         {"rotation", 10.0},
                                         {"shear", 0.0},
                                         {"scale", 0.1},
                                         {"shift", 0.1},
                                         {"fill_mode", std::string("nearest")}})};
  const AugmentPipeline pipeline({affine});
  int moved = 0;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    Sample a = ds->get(0), b = ds->get(0);
    pipeline.apply(a, seed);
    pipeline.apply(b, seed);
    CHECK(torch::equal(a.image, b.image));  // deterministic per sample seed
    CHECK(torch::equal(a.mask, b.mask));
    CHECK(((a.mask == 0) | (a.mask == 1)).all().item<bool>());  // still 0/1
    if (!torch::equal(a.mask, ds->get(0).mask)) ++moved;
    // The bright disc of the image and the mask moved together: the image inside the mask is bright.
    CHECK(a.image.masked_select(a.mask > 0.5).mean().item<float>() > 0.85f);
    // Nearest fill: the corners repeat edge values, never a constant 0 border band.
    CHECK(a.image[0][0][0].item<float>() == Approx(0.0f).margin(0.05));
  }
  CHECK(moved >= 6);
}

TEST_CASE("lung_ct: the shared CT subset", "[lung_ct]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path root = data / "lung-ct";
  auto ds = make_lung_ct(root / "2d_images", root / "2d_masks");
  REQUIRE(ds->size() == 38);
  CHECK(ds->info(0).id == "ID_0002_Z_0162");
  CHECK(ds->info(0).group == "ID_0002");
  CHECK(ds->info(37).id == "ID_0261_Z_0238");
  const Sample s = ds->get(0);
  CHECK(s.image.sizes() == torch::IntArrayRef({1, 128, 128}));
  CHECK(s.original_height == 512);
  CHECK(s.image.min().item<float>() == Approx(0.0f).margin(1e-6));
  CHECK(s.image.max().item<float>() == Approx(1.0f));
  const double lung = s.mask.mean().item<double>();
  CHECK(lung > 0.05);  // lungs fill a visible part of a chest slice
  CHECK(lung < 0.6);
  // Lungs are air: darker than the body around them.
  CHECK(s.image.masked_select(s.mask > 0.5).mean().item<float>() <
        s.image.masked_select(s.mask < 0.5).mean().item<float>() + 0.2f);
  auto limited = make_lung_ct(root / "2d_images", root / "2d_masks", {{"limit", std::int64_t{5}}});
  CHECK(limited->size() == 5);
}

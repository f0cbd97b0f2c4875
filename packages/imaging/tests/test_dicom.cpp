// DICOM reader/writer (DCMTK) and the small image operations.
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>
#include <unistd.h>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmimage/diregist.h"
#include "dcmtk/dcmimgle/dcmimage.h"
#include "dcmtk/dcmjpeg/djrploss.h"

#include "chestlab/errors.h"
#include "chestlab/imaging/dicom.h"
#include "chestlab/imaging/image_ops.h"
#include "chestlab/rng.h"
#include "support.h"

namespace fs = std::filesystem;
using chestlab::DataError;
using chestlab::DicomReadOptions;
using chestlab::MultiFramePolicy;
using chestlab::read_dicom;

namespace {

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  REQUIRE(a.size() == b.size());
  return cv::norm(a, b, cv::NORM_INF);
}

// The DataError's reason for reading `path`, or "" when it did not throw DataError.
std::string read_error(const fs::path& path, const DicomReadOptions& opts = {}) {
  try {
    read_dicom(path.string(), opts);
  } catch (const DataError& e) {
    CHECK(e.file == path.string());
    return e.reason_text;
  }
  return "";
}

// A native (explicit little endian) single-frame dataset; callers change it before saving.
struct CraftedImage {
  DcmFileFormat ff;
  DcmDataset& ds() { return *ff.getDataset(); }
  CraftedImage(Uint16 rows, Uint16 cols, unsigned long pixel_bytes) {
    ds().putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    ds().putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4");
    ds().putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    ds().putAndInsertUint16(DCM_SamplesPerPixel, 1);
    ds().putAndInsertUint16(DCM_Rows, rows);
    ds().putAndInsertUint16(DCM_Columns, cols);
    ds().putAndInsertUint16(DCM_BitsAllocated, 8);
    ds().putAndInsertUint16(DCM_BitsStored, 8);
    ds().putAndInsertUint16(DCM_HighBit, 7);
    ds().putAndInsertUint16(DCM_PixelRepresentation, 0);
    std::vector<Uint8> pixels(pixel_bytes);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<Uint8>(i * 7);
    if (pixel_bytes > 0) ds().putAndInsertUint8Array(DCM_PixelData, pixels.data(), pixel_bytes);
  }
  fs::path save(const fs::path& p) {
    REQUIRE(ff.saveFile(OFFilename(p.c_str()), EXS_LittleEndianExplicit).good());
    return p;
  }
};

// A smooth synthetic radiograph-like 8-bit image (JPEG-friendly, with structure).
cv::Mat synthetic_cxr(int size) {
  cv::Mat img(size, size, CV_8U);
  for (int r = 0; r < size; ++r)
    for (int c = 0; c < size; ++c)
      img.at<uchar>(r, c) = static_cast<uchar>(40 + 120.0 * r / size + 40.0 * c / size);
  cv::circle(img, {size / 3, size / 2}, size / 6, cv::Scalar(20), -1, cv::LINE_AA);
  cv::circle(img, {2 * size / 3, size / 2}, size / 6, cv::Scalar(30), -1, cv::LINE_AA);
  cv::GaussianBlur(img, img, {0, 0}, 3.0);
  return img;
}

// Runs fn with this process's stderr sent to a file; returns what was written there.
template <class Fn>
std::string captured_stderr(const fs::path& file, Fn fn) {
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  return bytes_of(file);
}

}  // namespace

// ---- shared files -------------------------------------------------------------------------

TEST_CASE("dicom: RSNA-like JPEG Baseline radiograph", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const auto img = read_dicom((data / "dicom" / "cxr_jpeg_baseline_1024.dcm").string());
  CHECK(img.pixels.type() == CV_32F);
  CHECK(img.pixels.rows == 1024);
  CHECK(img.pixels.cols == 1024);
  const auto& i = img.info;
  CHECK(i.transfer_syntax_uid == "1.2.840.10008.1.2.4.50");
  CHECK(i.transfer_syntax_name == "JPEG Baseline");
  CHECK(i.photometric_interpretation == "MONOCHROME2");
  CHECK(i.bits_allocated == 8);
  CHECK(i.bits_stored == 8);
  CHECK(i.frames == 1);
  CHECK(i.has_file_meta);
  CHECK(i.min_value >= 0.0);
  CHECK(i.max_value <= 255.0);
  CHECK(i.max_value - i.min_value > 200.0);  // a real radiograph spans the range
  CHECK(i.rescale_slope == 1.0);
  CHECK(i.rescale_intercept == 0.0);
  CHECK_FALSE(i.window_center.has_value());
  CHECK(i.metadata.at("PatientSex") == "M");
  CHECK(i.metadata.at("PatientAge") == "62");
  CHECK(i.metadata.at("ViewPosition") == "PA");
  CHECK(i.metadata.at("PixelSpacing") == "0.168\\0.168");
  CHECK(i.metadata.at("Modality") == "CR");
  CHECK(i.metadata.at("SOPClassUID") == UID_SecondaryCaptureImageStorage);
  CHECK(i.metadata.at("PatientID") == "16d7f894-55d7-4d95-8957-d18987f0e981");
  CHECK(i.notes.empty());
}

TEST_CASE("dicom: MONOCHROME1 comes out as the inverse", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const auto mono2 = read_dicom((data / "dicom" / "cxr_jpeg_baseline_1024.dcm").string());
  const auto mono1 = read_dicom((data / "dicom" / "cxr_monochrome1.dcm").string());
  CHECK(mono1.info.photometric_interpretation == "MONOCHROME1");
  // Same stored pixels, so every pixel pair sums to 255 (the 8-bit range reflected).
  cv::Mat sum = mono1.pixels + mono2.pixels;
  double lo = 0, hi = 0;
  cv::minMaxLoc(sum, &lo, &hi);
  CHECK(lo == 255.0);
  CHECK(hi == 255.0);
  CHECK(mono1.info.min_value == 255.0 - mono2.info.max_value);
  CHECK(mono1.info.max_value == 255.0 - mono2.info.min_value);
}

TEST_CASE("dicom: CT rescale gives Hounsfield units", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path file = data / "dicom" / "CT_small.dcm";
  const auto ct = read_dicom(file.string());
  CHECK(ct.pixels.rows == 128);
  CHECK(ct.pixels.cols == 128);
  CHECK(ct.info.rescale_intercept == -1024.0);
  CHECK(ct.info.rescale_slope == 1.0);
  CHECK(ct.info.pixel_representation == 1);
  CHECK(ct.info.metadata.at("Modality") == "CT");
  // Every value is the stored value plus the intercept, read independently here.
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(file.c_str())).good());
  const Uint16* stored = nullptr;  // OW: 16-bit words, two's complement per Pixel Representation
  unsigned long count = 0;
  REQUIRE(ff.getDataset()->findAndGetUint16Array(DCM_PixelData, stored, &count).good());
  REQUIRE(count == 128 * 128);
  cv::Mat expected;
  cv::Mat(128, 128, CV_16S, const_cast<Uint16*>(stored)).convertTo(expected, CV_32F, 1.0, -1024.0);
  CHECK(max_abs_diff(ct.pixels, expected) == 0.0);
  CHECK(ct.info.min_value < -800.0);  // air (this small crop's darkest pixel is -896)
  CHECK(ct.info.max_value > 0.0);     // soft tissue/bone
}

TEST_CASE("dicom: file without meta header equals its source", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  // no_meta.dcm is CT_small's data set without preamble and meta header (plus one stray
  // leading byte, as in pydicom's copy).
  const auto bare = read_dicom((data / "dicom" / "no_meta.dcm").string());
  const auto ct = read_dicom((data / "dicom" / "CT_small.dcm").string());
  CHECK_FALSE(bare.info.has_file_meta);
  CHECK(bare.info.transfer_syntax_uid == "1.2.840.10008.1.2.1");
  CHECK(max_abs_diff(bare.pixels, ct.pixels) == 0.0);
  CHECK(bare.info.rescale_intercept == -1024.0);
}

TEST_CASE("dicom: big endian and implicit VR decode to the same MR image", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const auto big = read_dicom((data / "dicom" / "MR_small_bigendian.dcm").string());
  const auto implicit = read_dicom((data / "dicom" / "MR_small_implicit.dcm").string());
  CHECK(big.info.transfer_syntax_uid == "1.2.840.10008.1.2.2");
  CHECK(implicit.info.transfer_syntax_uid == "1.2.840.10008.1.2");
  CHECK(big.pixels.rows == 64);
  CHECK(big.pixels.cols == 64);
  CHECK(max_abs_diff(big.pixels, implicit.pixels) == 0.0);
  CHECK(big.info.max_value > 1000.0);  // 16-bit MR values, wrongly swapped bytes would differ
  CHECK(big.info.window_center == 600.0);
  CHECK(big.info.window_width == 1600.0);
}

TEST_CASE("dicom: compressed and deflated syntaxes decode", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  struct Case {
    const char* file;
    int rows, cols;
    const char* uid;
    double max_possible;
  };
  const Case cases[] = {
      {"JPEGBaseline_1s_1f_u_08_08.dcm", 100, 100, "1.2.840.10008.1.2.4.50", 255},
      {"JPGExtended.dcm", 1024, 256, "1.2.840.10008.1.2.4.51", 4095},
      {"JPGLosslessP14SV1_1s_1f_8b.dcm", 768, 1024, "1.2.840.10008.1.2.4.70", 255},
      {"image_dfl.dcm", 512, 512, "1.2.840.10008.1.2.1.99", 255},
      {"emri_small_RLE.dcm", 64, 64, "1.2.840.10008.1.2.5", 4095},
  };
  for (const auto& c : cases) {
    INFO(c.file);
    const auto img = read_dicom((data / "dicom" / c.file).string());
    CHECK(img.pixels.rows == c.rows);
    CHECK(img.pixels.cols == c.cols);
    CHECK(img.info.transfer_syntax_uid == c.uid);
    CHECK(img.info.min_value >= 0.0);
    CHECK(img.info.max_value <= c.max_possible);
    CHECK(img.info.max_value > img.info.min_value);
  }
  // 12-bit JPEG really carries values beyond 8 bits.
  CHECK(read_dicom((data / "dicom" / "JPGExtended.dcm").string()).info.max_value > 255.0);
}

TEST_CASE("dicom: multi-frame policy", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path file = data / "dicom" / "emri_small_RLE.dcm";
  const auto first = read_dicom(file.string());
  CHECK(first.info.frames == 10);
  CHECK(first.pixels.rows == 64);
  REQUIRE(first.info.notes.size() == 1);
  CHECK(first.info.notes[0] == "multi-frame: returned frame 1 of 10");

  // Frame 1 is the first 64x64 block of DCMTK's own full decode.
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(file.c_str())).good());
  ::DicomImage all(&ff, ff.getDataset()->getOriginalXfer(), CIF_IgnoreModalityTransformation);
  REQUIRE(all.getStatus() == EIS_Normal);
  REQUIRE(all.getFrameCount() == 10);
  const auto* inter = all.getInterData();
  REQUIRE(inter->getRepresentation() == EPR_Uint16);
  cv::Mat frame1;
  cv::Mat(64, 64, CV_16U, const_cast<void*>(inter->getData())).convertTo(frame1, CV_32F);
  CHECK(max_abs_diff(first.pixels, frame1) == 0.0);

  DicomReadOptions strict;
  strict.multiframe = MultiFramePolicy::error;
  const std::string reason = read_error(file, strict);
  CHECK_THAT(reason, Catch::Contains("has 10 frames"));
  CHECK(chestlab::parse_multiframe_policy("first") == MultiFramePolicy::first);
  CHECK(chestlab::parse_multiframe_policy("error") == MultiFramePolicy::error);
  CHECK_THROWS_AS(chestlab::parse_multiframe_policy("all"), chestlab::ConfigError);
}

TEST_CASE("dicom: JPEG 2000 is refused naming the transfer syntax", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path file = data / "dicom" / "693_J2KR.dcm";
  try {
    read_dicom(file.string());
    FAIL("JPEG 2000 decoded although this DCMTK has no JPEG 2000 decoder");
  } catch (const DataError& e) {
    CHECK(e.file == file.string());
    CHECK(e.reason_text ==
          "JPEG 2000 (Lossless only) (1.2.840.10008.1.2.4.90) is not supported by this build's "
          "DICOM decoder");
    CHECK_THAT(std::string(e.what()), Catch::StartsWith(file.string()));
  }
}

TEST_CASE("dicom: RGB is converted to grey with BT.601 weights", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path file = data / "dicom" / "SC_rgb_expb.dcm";
  const auto grey = read_dicom(file.string());
  CHECK(grey.pixels.rows == 100);
  CHECK(grey.pixels.cols == 100);
  CHECK(grey.info.samples_per_pixel == 3);
  CHECK(grey.info.photometric_interpretation == "RGB");
  REQUIRE(grey.info.notes.size() == 1);
  CHECK_THAT(grey.info.notes[0], Catch::Contains("0.299 R + 0.587 G + 0.114 B"));
  // Compare with the RGB values rendered by DCMTK itself.
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(file.c_str())).good());
  ::DicomImage rgb(&ff, ff.getDataset()->getOriginalXfer());
  REQUIRE(rgb.getStatus() == EIS_Normal);
  const auto* px = static_cast<const Uint8*>(rgb.getOutputData(8, 0, 0));  // interleaved RGB
  REQUIRE(px != nullptr);
  double worst = 0.0;
  std::set<int> distinct;
  for (int r = 0; r < 100; ++r)
    for (int c = 0; c < 100; ++c) {
      const Uint8* p = px + 3 * (r * 100 + c);
      const double expected = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
      worst = std::max(worst, std::abs(grey.pixels.at<float>(r, c) - expected));
      distinct.insert(p[0] * 65536 + p[1] * 256 + p[2]);
    }
  CHECK(worst <= 1.0);           // integer rounding of the weighted sum
  CHECK(distinct.size() >= 5);   // a real colour test image, not a grey one
}

TEST_CASE("dicom: VOI window maps to [0, 1]", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path mr = data / "dicom" / "MR_small_implicit.dcm";
  const auto raw = read_dicom(mr.string());
  DicomReadOptions opts;
  opts.apply_window = true;
  const auto windowed = read_dicom(mr.string(), opts);  // the file's 600/1600
  double lo = 0, hi = 0;
  cv::minMaxLoc(windowed.pixels, &lo, &hi);
  CHECK(lo >= 0.0);
  CHECK(hi <= 1.0);
  for (int k = 0; k < 64 * 64; k += 97) {
    const float v = raw.pixels.at<float>(k / 64, k % 64);
    const double expected = std::clamp((v - 599.5) / 1599.0 + 0.5, 0.0, 1.0);
    CHECK(windowed.pixels.at<float>(k / 64, k % 64) == Approx(expected).margin(1e-5));
  }
  opts.window_center = 100.0;  // explicit override
  opts.window_width = 50.0;
  const auto narrow = read_dicom(mr.string(), opts);
  const float v0 = raw.pixels.at<float>(32, 32);
  CHECK(narrow.pixels.at<float>(32, 32) ==
        Approx(std::clamp((v0 - 99.5) / 49.0 + 0.5, 0.0, 1.0)).margin(1e-5));

  // MONOCHROME1: the window applies to the stored values, then the result is inverted.
  DicomReadOptions cxr;
  cxr.apply_window = true;
  cxr.window_center = 128.0;
  cxr.window_width = 256.0;
  const auto w2 = read_dicom((data / "dicom" / "cxr_jpeg_baseline_1024.dcm").string(), cxr);
  const auto w1 = read_dicom((data / "dicom" / "cxr_monochrome1.dcm").string(), cxr);
  cv::Mat sum = w1.pixels + w2.pixels;
  cv::minMaxLoc(sum, &lo, &hi);
  CHECK(lo == Approx(1.0));
  CHECK(hi == Approx(1.0));

  // No window in the file and none given.
  DicomReadOptions want;
  want.apply_window = true;
  CHECK_THAT(read_error(data / "dicom" / "CT_small.dcm", want),
             Catch::Contains("no Window Center/Width"));
}

TEST_CASE("dicom: concurrent reads match serial reads", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const std::vector<std::string> files = {
      "cxr_jpeg_baseline_1024.dcm", "JPGExtended.dcm", "emri_small_RLE.dcm", "CT_small.dcm",
      "MR_small_bigendian.dcm",     "image_dfl.dcm",   "SC_rgb_expb.dcm",    "no_meta.dcm",
      "JPGLosslessP14SV1_1s_1f_8b.dcm"};
  std::vector<cv::Mat> serial;
  for (const auto& f : files) serial.push_back(read_dicom((data / "dicom" / f).string()).pixels);
  std::atomic<int> mismatches{0}, errors{0}, j2k_refusals{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (std::size_t k = 0; k < files.size(); ++k) {
          const std::size_t i = (k + static_cast<std::size_t>(t)) % files.size();
          try {
            const auto img = read_dicom((data / "dicom" / files[i]).string());
            if (cv::norm(img.pixels, serial[i], cv::NORM_INF) != 0.0) ++mismatches;
          } catch (...) {
            ++errors;
          }
          try {
            read_dicom((data / "dicom" / "693_J2KR.dcm").string());
          } catch (const DataError&) {
            ++j2k_refusals;
          }
        }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
  CHECK(errors == 0);
  CHECK(j2k_refusals == 4 * 3 * static_cast<int>(files.size()));
}

// ---- damaged and hostile files --------------------------------------------------------------

TEST_CASE("dicom: truncated copies never crash and fail with DataError", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path scratch = chestlab::test::scratch_dir("dicom_truncated");
  for (const char* name : {"cxr_jpeg_baseline_1024.dcm", "CT_small.dcm", "emri_small_RLE.dcm",
                           "image_dfl.dcm", "MR_small_bigendian.dcm", "JPGExtended.dcm",
                           "no_meta.dcm", "SC_rgb_expb.dcm"}) {
    const std::string whole = bytes_of(data / "dicom" / name);
    // Cuts inside the preamble, the meta header, the data set and the pixel data: each
    // leaves an element incomplete, so each must be refused.
    for (double fraction : {0.0, 0.001, 0.02, 0.05, 0.3, 0.6, 0.9, 0.99}) {
      const auto len = static_cast<std::size_t>(fraction * static_cast<double>(whole.size()));
      const fs::path cut = scratch / (std::string(name) + "." + std::to_string(len));
      write_bytes(cut, whole.substr(0, len));
      INFO(cut.filename().string());
      CHECK_FALSE(read_error(cut).empty());
    }
  }
}

TEST_CASE("dicom: random bytes, empty and missing files give DataError", "[dicom]") {
  const fs::path scratch = chestlab::test::scratch_dir("dicom_hostile");
  CHECK_THAT(read_error(scratch / "absent.dcm"), Catch::Contains("no such file"));
  CHECK_THAT(read_error(scratch), Catch::Contains("not a regular file"));
  write_bytes(scratch / "empty.dcm", "");
  CHECK_THAT(read_error(scratch / "empty.dcm"), Catch::Contains("empty"));
  chestlab::Rng rng(20240611);
  for (int k = 0; k < 20; ++k) {
    std::string noise(static_cast<std::size_t>(1 + rng.below(20000)), '\0');
    for (char& ch : noise) ch = static_cast<char>(rng.below(256));
    if (k % 2 == 1 && noise.size() > 132) noise.replace(128, 4, "DICM");  // pretend Part 10
    const fs::path f = scratch / ("noise" + std::to_string(k) + ".dcm");
    write_bytes(f, noise);
    INFO(f.filename().string());
    CHECK_FALSE(read_error(f).empty());
  }
}

TEST_CASE("dicom: inconsistent headers are refused before decoding", "[dicom]") {
  const fs::path scratch = chestlab::test::scratch_dir("dicom_inconsistent");
  {
    CraftedImage ok(64, 64, 64 * 64);
    const auto img = read_dicom(ok.save(scratch / "ok.dcm").string());
    CHECK(img.pixels.at<float>(0, 1) == 7.0f);  // the crafted files are otherwise valid
  }
  {
    CraftedImage shorter(64, 64, 1000);
    CHECK_THAT(read_error(shorter.save(scratch / "short.dcm")),
               Catch::Contains("Pixel Data holds 1000 bytes but") && Catch::Contains("need 4096"));
  }
  {
    CraftedImage frames(64, 64, 64 * 64);
    frames.ds().putAndInsertString(DCM_NumberOfFrames, "3");
    CHECK_THAT(read_error(frames.save(scratch / "frames.dcm")), Catch::Contains("need 12288"));
  }
  {
    CraftedImage huge(60000, 60000, 4096);
    CHECK_THAT(read_error(huge.save(scratch / "huge.dcm")),
               Catch::Contains("60000 x 60000") && Catch::Contains("outside 1..16384"));
  }
  {
    CraftedImage zero(0, 64, 4096);
    CHECK_THAT(read_error(zero.save(scratch / "zero.dcm")), Catch::Contains("outside"));
  }
  {
    CraftedImage bits(64, 64, 64 * 64);
    bits.ds().putAndInsertUint16(DCM_BitsAllocated, 12);
    CHECK_THAT(read_error(bits.save(scratch / "bits.dcm")), Catch::Contains("Bits Allocated is 12"));
  }
  {
    CraftedImage stored(64, 64, 64 * 64);
    stored.ds().putAndInsertUint16(DCM_BitsStored, 9);
    CHECK_THAT(read_error(stored.save(scratch / "stored.dcm")), Catch::Contains("Bits Stored is 9"));
  }
  {
    CraftedImage no_pixels(64, 64, 0);
    CHECK_THAT(read_error(no_pixels.save(scratch / "nopixels.dcm")),
               Catch::Contains("no Pixel Data"));
  }
  {
    CraftedImage no_rows(64, 64, 64 * 64);
    no_rows.ds().findAndDeleteElement(DCM_Rows);
    CHECK_THAT(read_error(no_rows.save(scratch / "norows.dcm")), Catch::Contains("Rows"));
  }
  {
    CraftedImage slope(64, 64, 64 * 64);
    slope.ds().putAndInsertString(DCM_RescaleSlope, "0");
    CHECK_THAT(read_error(slope.save(scratch / "slope.dcm")), Catch::Contains("Rescale Slope"));
  }
}

TEST_CASE("dicom: encapsulated data announcing more frames than fragments", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path scratch = chestlab::test::scratch_dir("dicom_fragments");
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename((data / "dicom" / "cxr_jpeg_baseline_1024.dcm").c_str())).good());
  ff.getDataset()->putAndInsertString(DCM_NumberOfFrames, "500");
  const fs::path f = scratch / "frames.dcm";
  REQUIRE(ff.saveFile(OFFilename(f.c_str()), EXS_JPEGProcess1).good());
  CHECK_THAT(read_error(f), Catch::Contains("Number of Frames is 500") &&
                                Catch::Contains("only 1 fragment"));
}

// Replaces the JPEG Baseline stream of `source` by `fragments` (in that order, after an
// empty offset table).
fs::path with_jpeg_fragments(const fs::path& source, const std::vector<std::string>& fragments,
                             const fs::path& out) {
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(source.c_str())).good());
  auto* sequence = new DcmPixelSequence(DCM_PixelSequenceTag);
  sequence->insert(new DcmPixelItem(DCM_PixelItemTag));  // empty Basic Offset Table
  for (const std::string& bytes : fragments) {
    auto* fragment = new DcmPixelItem(DCM_PixelItemTag);
    std::string even = bytes;
    if (even.size() % 2) even.push_back('\0');
    REQUIRE(fragment->putUint8Array(reinterpret_cast<const Uint8*>(even.data()), even.size()).good());
    sequence->insert(fragment);
  }
  auto* pixels = new DcmPixelData(DCM_PixelData);
  pixels->putOriginalRepresentation(EXS_JPEGProcess1, nullptr, sequence);
  REQUIRE(ff.getDataset()->insert(pixels, /*replaceOld=*/true).good());
  REQUIRE(ff.saveFile(OFFilename(out.c_str()), EXS_JPEGProcess1).good());
  return out;
}

// Replaces the JPEG stream of `source` by `jpeg` (one fragment, empty offset table).
fs::path with_jpeg_stream(const fs::path& source, const std::string& jpeg, const fs::path& out) {
  return with_jpeg_fragments(source, {jpeg}, out);
}

TEST_CASE("dicom: damaged JPEG streams inside well-formed files", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path scratch = chestlab::test::scratch_dir("dicom_bad_jpeg");
  const fs::path source = data / "dicom" / "cxr_jpeg_baseline_1024.dcm";
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(source.c_str())).good());
  DcmPixelData* pixels = nullptr;
  DcmElement* element = nullptr;
  REQUIRE(ff.getDataset()->findAndGetElement(DCM_PixelData, element).good());
  pixels = dynamic_cast<DcmPixelData*>(element);
  DcmPixelSequence* sequence = nullptr;
  REQUIRE(pixels->getEncapsulatedRepresentation(EXS_JPEGProcess1, nullptr, sequence).good());
  DcmPixelItem* item = nullptr;
  REQUIRE(sequence->getItem(item, 1).good());
  Uint8* bytes = nullptr;
  REQUIRE(item->getUint8Array(bytes).good());
  const std::string jpeg(reinterpret_cast<const char*>(bytes), item->getLength());

  // Sanity: the rebuilt file with the intact stream decodes like the original.
  const auto same = read_dicom(with_jpeg_stream(source, jpeg, scratch / "same.dcm").string());
  CHECK(cv::norm(same.pixels, read_dicom(source.string()).pixels, cv::NORM_INF) == 0.0);

  const std::string half = jpeg.substr(0, jpeg.size() / 2);
  CHECK_THAT(read_error(with_jpeg_stream(source, half, scratch / "half.dcm")),
             Catch::Contains("JPEG"));
  CHECK_FALSE(read_error(with_jpeg_stream(source, jpeg.substr(0, 300), scratch / "head.dcm")).empty());
  // A stretch missing from the middle: the decoder only warns and pads with grey.
  std::string holed = jpeg;
  holed.erase(jpeg.size() / 2, 2000);
  CHECK_THAT(read_error(with_jpeg_stream(source, holed, scratch / "holed.dcm")),
             Catch::Contains("the JPEG stream is damaged") && Catch::Contains("Corrupt JPEG data"));
  CHECK_FALSE(read_error(with_jpeg_stream(source, "not a jpeg stream", scratch / "junk.dcm")).empty());
}

TEST_CASE("dicom: DCMTK's messages go into the error, not to stderr", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path scratch = chestlab::test::scratch_dir("dicom_quiet");
  const std::string whole = bytes_of(data / "dicom" / "CT_small.dcm");
  write_bytes(scratch / "cut.dcm", whole.substr(0, whole.size() / 2));
  std::string reason;
  const std::string err = captured_stderr(scratch / "stderr.txt", [&] {
    reason = read_error(scratch / "cut.dcm");
    read_error(data / "dicom" / "693_J2KR.dcm");
    read_dicom((data / "dicom" / "no_meta.dcm").string());
  });
  CHECK(err.empty());
  CHECK_THAT(reason, Catch::Contains("(DCMTK: "));
}

// ---- JPEG fast path (libjpeg-turbo) ---------------------------------------------------------

namespace {

DicomReadOptions fast_options(int min_rows, int min_columns) {
  DicomReadOptions o;
  o.fast_jpeg = true;
  o.min_rows = min_rows;
  o.min_columns = min_columns;
  return o;
}

bool has_fast_path_note(const chestlab::DicomInfo& info) {
  for (const auto& n : info.notes)
    if (n.rfind("JPEG fast path: ", 0) == 0) return true;
  return false;
}

// Mean and maximum of |a - b|.
std::pair<double, double> abs_diff_stats(const cv::Mat& a, const cv::Mat& b) {
  REQUIRE(a.size() == b.size());
  cv::Mat d;
  cv::absdiff(a, b, d);
  double max = 0.0;
  cv::minMaxLoc(d, nullptr, &max);
  return {cv::mean(d)[0], max};
}

// The fast read of `file` at `size` px against the exact read area-resized to the same size.
// libjpeg-turbo's scaled IDCT gives each output pixel the rounded mean of its block, so the
// two differ by rounding only: under one grey level anywhere, about a quarter on average.
void check_close_to_exact(const fs::path& file, int size, const DicomReadOptions& base = {}) {
  INFO(file.filename().string() << " at " << size << " px");
  DicomReadOptions fast = base;
  fast.fast_jpeg = true;
  fast.min_rows = fast.min_columns = size;
  const auto exact = read_dicom(file.string(), base);
  const auto quick = read_dicom(file.string(), fast);
  REQUIRE(has_fast_path_note(quick.info));
  REQUIRE(quick.pixels.rows == size);
  REQUIRE(quick.pixels.cols == size);
  const auto [mean, max] =
      abs_diff_stats(quick.pixels, chestlab::resize_image(exact.pixels, size, size));
  const double grey_level = base.apply_window ? 1.0 / *base.window_width : 1.0;
  CHECK(mean < 0.4 * grey_level);
  CHECK(max <= 1.0 * grey_level);
  // The header is the file's, not the decoded size's.
  CHECK(quick.info.rows == exact.info.rows);
  CHECK(quick.info.columns == exact.info.columns);
  CHECK(quick.info.rescale_slope == exact.info.rescale_slope);
  CHECK(quick.info.metadata == exact.info.metadata);
}

// The JPEG stream of a single-fragment file.
std::string first_fragment(const fs::path& source) {
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(source.c_str())).good());
  DcmElement* element = nullptr;
  REQUIRE(ff.getDataset()->findAndGetElement(DCM_PixelData, element).good());
  auto* pixels = dynamic_cast<DcmPixelData*>(element);
  DcmPixelSequence* sequence = nullptr;
  REQUIRE(pixels->getEncapsulatedRepresentation(ff.getDataset()->getOriginalXfer(), nullptr, sequence).good());
  DcmPixelItem* item = nullptr;
  REQUIRE(sequence->getItem(item, 1).good());
  Uint8* bytes = nullptr;
  REQUIRE(item->getUint8Array(bytes).good());
  return std::string(reinterpret_cast<const char*>(bytes), item->getLength());
}

}  // namespace

TEST_CASE("dicom fast path: the real radiograph at each DCT scale", "[dicom][fast_jpeg]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path file = data / "dicom" / "cxr_jpeg_baseline_1024.dcm";
  for (int size : {512, 256, 128}) check_close_to_exact(file, size);

  const auto quarter = read_dicom(file.string(), fast_options(256, 256));
  CHECK(quarter.info.notes ==
        std::vector<std::string>{"JPEG fast path: decoded by libjpeg-turbo at DCT scale 1/4 (256 x 256)"});
  // The smallest scale that keeps both minimums: 1/2 for 300 rows even when 100 columns do.
  CHECK(read_dicom(file.string(), fast_options(300, 100)).pixels.size() == cv::Size(512, 512));
  CHECK(read_dicom(file.string(), fast_options(257, 257)).pixels.rows == 512);
  CHECK(read_dicom(file.string(), fast_options(1, 1)).pixels.rows == 128);  // 1/8 at most

  // At full size libjpeg-turbo's accurate integer IDCT is IJG's, which DCMTK uses: the same pixels.
  for (int size : {0, 1024, 2048}) {
    INFO("min size " << size);
    const auto full = read_dicom(file.string(), fast_options(size, size));
    CHECK(full.info.notes == std::vector<std::string>{"JPEG fast path: decoded by libjpeg-turbo at full size"});
    CHECK(max_abs_diff(full.pixels, read_dicom(file.string()).pixels) == 0.0);
  }
}

TEST_CASE("dicom fast path: MONOCHROME1, windowing and a small JPEG", "[dicom][fast_jpeg]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path mono1 = data / "dicom" / "cxr_monochrome1.dcm";
  check_close_to_exact(mono1, 256);
  const auto inverted = read_dicom(mono1.string(), fast_options(256, 256));
  CHECK(std::find(inverted.info.notes.begin(), inverted.info.notes.end(), "MONOCHROME1 inverted: v -> 255 - v") !=
        inverted.info.notes.end());
  // Inverted in the same range as the exact path: the MONOCHROME2 file's fast read, reflected.
  const auto upright = read_dicom((data / "dicom" / "cxr_jpeg_baseline_1024.dcm").string(), fast_options(256, 256));
  CHECK(max_abs_diff(inverted.pixels, 255.0 - upright.pixels) == 0.0);

  // The window maps the fast path's modality values as it maps the exact path's (before the
  // inversion). Against the exact path it differs more than the values do where a block
  // straddles the window's edge: there the exact path averages clipped values.
  DicomReadOptions windowed = fast_options(256, 256);
  windowed.apply_window = true;
  windowed.window_center = 128;
  windowed.window_width = 200;
  const cv::Mat modality = 255.0 - inverted.pixels;
  const cv::Mat expected = 1.0 - chestlab::window(modality, 128, 200);
  CHECK(max_abs_diff(read_dicom(mono1.string(), windowed).pixels, expected) < 1e-6);
  check_close_to_exact(data / "dicom" / "JPEGBaseline_1s_1f_u_08_08.dcm", 25);
}

TEST_CASE("dicom fast path: every other encoding takes the exact path", "[dicom][fast_jpeg]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  // 12-bit JPEG, lossless JPEG, RLE multi-frame, native, big endian, implicit, deflated,
  // no meta header, RGB: pixels, notes and errors exactly as without the option.
  for (const char* name : {"JPGExtended.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "emri_small_RLE.dcm",
                           "CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "image_dfl.dcm",
                           "no_meta.dcm", "SC_rgb_expb.dcm"}) {
    INFO(name);
    const fs::path file = data / "dicom" / name;
    const auto exact = read_dicom(file.string());
    const auto quick = read_dicom(file.string(), fast_options(16, 16));
    CHECK(quick.pixels.size() == exact.pixels.size());
    CHECK(max_abs_diff(quick.pixels, exact.pixels) == 0.0);
    CHECK(quick.info.notes == exact.info.notes);
  }
  const fs::path j2k = data / "dicom" / "693_J2KR.dcm";
  CHECK(read_error(j2k, fast_options(16, 16)) == read_error(j2k));
  // Several frames of 8-bit JPEG: the policies still apply, the exact path decodes frame 1.
  const fs::path scratch = chestlab::test::scratch_dir("dicom_fast_frames");
  const std::string jpeg = first_fragment(data / "dicom" / "cxr_jpeg_baseline_1024.dcm");
  const fs::path two = scratch / "two_frames.dcm";
  with_jpeg_fragments(data / "dicom" / "cxr_jpeg_baseline_1024.dcm", {jpeg, jpeg}, two);
  {
    DcmFileFormat twice;
    REQUIRE(twice.loadFile(OFFilename(two.c_str())).good());
    twice.getDataset()->putAndInsertString(DCM_NumberOfFrames, "2");
    REQUIRE(twice.saveFile(OFFilename(two.c_str()), EXS_JPEGProcess1).good());
  }
  // DCMTK refuses this crafted file (two fragments, no offset table); the fast path, which
  // would decode the first stream, must leave it to DCMTK and give the same outcome.
  CHECK(read_error(two, fast_options(256, 256)) == read_error(two));
  DicomReadOptions strict = fast_options(256, 256);
  strict.multiframe = MultiFramePolicy::error;
  CHECK_THAT(read_error(two, strict), Catch::Contains("has 2 frames"));
}

TEST_CASE("dicom fast path: 8-bit JPEG Extended and a frame split into fragments", "[dicom][fast_jpeg]") {
  // Runs without the shared data: a synthetic radiograph through DCMTK's own encoders.
  const fs::path scratch = chestlab::test::scratch_dir("dicom_fast_synthetic");
  chestlab::DicomWriteInfo info;
  info.patient_id = "fast-path";
  const fs::path baseline = scratch / "baseline.dcm";
  chestlab::write_dicom_jpeg_baseline(baseline.string(), synthetic_cxr(512), info);
  check_close_to_exact(baseline, 128);

  DcmFileFormat ff;
  REQUIRE(ff.loadFile(OFFilename(baseline.c_str())).good());
  DJ_RPLossy params(90);
  REQUIRE(ff.getDataset()->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).good());
  REQUIRE(ff.getDataset()->chooseRepresentation(EXS_JPEGProcess2_4, &params).good());
  const fs::path extended = scratch / "extended.dcm";
  REQUIRE(ff.saveFile(OFFilename(extended.c_str()), EXS_JPEGProcess2_4).good());
  REQUIRE(read_dicom(extended.string()).info.transfer_syntax_uid == "1.2.840.10008.1.2.4.51");
  check_close_to_exact(extended, 128);

  // A frame spread over three fragments (split at even offsets, so that only the last one
  // is padded) decodes to the very pixels of the one-fragment file.
  const std::string jpeg = first_fragment(baseline);
  const std::size_t third = (jpeg.size() / 3) & ~std::size_t{1};
  const fs::path split = with_jpeg_fragments(
      baseline, {jpeg.substr(0, third), jpeg.substr(third, third), jpeg.substr(2 * third)}, scratch / "split.dcm");
  const auto pieces = read_dicom(split.string(), fast_options(128, 128));
  CHECK(has_fast_path_note(pieces.info));
  CHECK(max_abs_diff(pieces.pixels, read_dicom(baseline.string(), fast_options(128, 128)).pixels) == 0.0);
}

TEST_CASE("dicom fast path: damaged streams are refused as on the exact path", "[dicom][fast_jpeg]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path scratch = chestlab::test::scratch_dir("dicom_fast_damaged");
  const fs::path source = data / "dicom" / "cxr_jpeg_baseline_1024.dcm";
  const std::string jpeg = first_fragment(source);
  const DicomReadOptions fast = fast_options(256, 256);
  std::string holed = jpeg;
  holed.erase(jpeg.size() / 2, 2000);
  // libjpeg-turbo stops at the first warning; DCMTK then decodes and refuses the stream.
  CHECK_THAT(read_error(with_jpeg_stream(source, holed, scratch / "holed.dcm"), fast),
             Catch::Contains("the JPEG stream is damaged"));
  CHECK_THAT(read_error(with_jpeg_stream(source, jpeg.substr(0, jpeg.size() / 2), scratch / "half.dcm"), fast),
             Catch::Contains("JPEG"));
  CHECK_FALSE(read_error(with_jpeg_stream(source, "not a jpeg stream", scratch / "junk.dcm"), fast).empty());
  // A stream of another size than the header's is never returned as the image.
  const cv::Mat small = synthetic_cxr(256);
  chestlab::DicomWriteInfo info;
  info.patient_id = "other-size";
  chestlab::write_dicom_jpeg_baseline((scratch / "small.dcm").string(), small, info);
  const fs::path mismatched =
      with_jpeg_stream(source, first_fragment(scratch / "small.dcm"), scratch / "mismatched.dcm");
  const auto refused = read_dicom(mismatched.string(), fast);
  CHECK_FALSE(has_fast_path_note(refused.info));
  CHECK(std::find(refused.info.notes.begin(), refused.info.notes.end(),
                  "JPEG fast path not taken (the JPEG stream is 256 x 256 but the header says 1024 x 1024): "
                  "decoded by DCMTK") != refused.info.notes.end());
}

TEST_CASE("dicom fast path: concurrent reads match serial reads", "[dicom][fast_jpeg]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const std::vector<std::string> files = {"cxr_jpeg_baseline_1024.dcm", "cxr_monochrome1.dcm",
                                          "JPEGBaseline_1s_1f_u_08_08.dcm", "CT_small.dcm"};
  const DicomReadOptions fast = fast_options(64, 64);
  std::vector<cv::Mat> serial;
  for (const auto& f : files) serial.push_back(read_dicom((data / "dicom" / f).string(), fast).pixels);
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round)
        for (std::size_t k = 0; k < files.size(); ++k) {
          const std::size_t i = (k + static_cast<std::size_t>(t)) % files.size();
          try {
            if (cv::norm(read_dicom((data / "dicom" / files[i]).string(), fast).pixels, serial[i], cv::NORM_INF) != 0.0)
              ++mismatches;
          } catch (...) {
            ++errors;
          }
        }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
  CHECK(errors == 0);
}

// ---- writer ---------------------------------------------------------------------------------

TEST_CASE("dicom: JPEG Baseline writer round trip", "[dicom]") {
  const fs::path scratch = chestlab::test::scratch_dir("dicom_writer");
  const cv::Mat image = synthetic_cxr(1024);
  chestlab::DicomWriteInfo info;
  info.patient_id = "0004cfab-14fd-4e49-80ba-63a80b6bddd6";
  info.patient_sex = "F";
  info.patient_age = "51";
  info.view_position = "AP";
  info.pixel_spacing_mm = 0.14300000000000002;
  const fs::path a = scratch / "a.dcm", b = scratch / "b.dcm";
  chestlab::write_dicom_jpeg_baseline(a.string(), image, info);
  chestlab::write_dicom_jpeg_baseline(b.string(), image, info);
  CHECK(bytes_of(a) == bytes_of(b));  // reproducible corpus

  const auto back = read_dicom(a.string());
  REQUIRE(back.pixels.rows == 1024);
  REQUIRE(back.pixels.cols == 1024);
  cv::Mat original;
  image.convertTo(original, CV_32F);
  const double mad = cv::mean(cv::abs(back.pixels - original))[0];
  CHECK(mad < 1.0);  // quality 95 on a smooth image
  CHECK(back.info.transfer_syntax_uid == "1.2.840.10008.1.2.4.50");
  CHECK(back.info.photometric_interpretation == "MONOCHROME2");
  CHECK(back.info.bits_stored == 8);
  const auto& m = back.info.metadata;
  CHECK(m.at("PatientID") == info.patient_id);
  CHECK(m.at("PatientName") == info.patient_id);
  CHECK(m.at("PatientSex") == "F");
  CHECK(m.at("PatientAge") == "51");
  CHECK(m.at("ViewPosition") == "AP");
  CHECK(m.at("PixelSpacing") == "0.143\\0.143");
  CHECK(m.at("Modality") == "CR");
  CHECK(m.at("BodyPartExamined") == "CHEST");
  CHECK(m.at("SeriesDescription") == "view: AP");
  CHECK(m.at("SOPClassUID") == UID_SecondaryCaptureImageStorage);
  const auto uids = chestlab::deterministic_uids(info.patient_id);
  CHECK(m.at("SOPInstanceUID") == uids.sop_instance);
  CHECK(m.at("StudyInstanceUID") == uids.study);
  CHECK(m.at("SeriesInstanceUID") == uids.series);
  CHECK(uids.study != uids.series);
  CHECK(uids.sop_instance.size() <= 64);
  CHECK(chestlab::deterministic_uids("another").study != uids.study);

  // A lower quality gives a smaller, different file.
  info.quality = 50;
  chestlab::write_dicom_jpeg_baseline(b.string(), image, info);
  CHECK(fs::file_size(b) < fs::file_size(a));
}

TEST_CASE("dicom: written files carry the RSNA template's attributes", "[dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path scratch = chestlab::test::scratch_dir("dicom_template");
  chestlab::DicomWriteInfo info;
  info.patient_id = "16d7f894-55d7-4d95-8957-d18987f0e981";
  info.patient_sex = "M";
  info.patient_age = "62";
  info.view_position = "PA";
  info.pixel_spacing_mm = 0.168;
  const fs::path ours = scratch / "ours.dcm";
  chestlab::write_dicom_jpeg_baseline(ours.string(), synthetic_cxr(256), info);

  auto tags_of = [](const fs::path& p) {
    DcmFileFormat ff;
    REQUIRE(ff.loadFile(OFFilename(p.c_str())).good());
    std::map<std::string, std::string> tags;
    for (DcmItem* item : {static_cast<DcmItem*>(ff.getMetaInfo()),
                          static_cast<DcmItem*>(ff.getDataset())}) {
      for (unsigned long i = 0; i < item->card(); ++i) {
        DcmElement* e = item->getElement(i);
        OFString value;
        if (e->getTag() != DCM_PixelData) e->getOFStringArray(value);
        tags[e->getTag().toString().c_str()] = value.c_str();
      }
    }
    return tags;
  };
  const auto theirs = tags_of(data / "dicom" / "cxr_jpeg_baseline_1024.dcm");
  const auto mine = tags_of(ours);
  std::vector<std::string> missing, extra;
  for (const auto& [tag, v] : theirs)
    if (!mine.count(tag)) missing.push_back(tag);
  for (const auto& [tag, v] : mine)
    if (!theirs.count(tag)) extra.push_back(tag);
  CHECK(missing.empty());
  CHECK(extra.empty());
  // Same values wherever they are not image- or instance-specific.
  for (const char* tag : {"(0008,0005)", "(0008,0016)", "(0008,0020)", "(0008,0030)",
                          "(0008,0060)", "(0008,0064)", "(0008,103e)", "(0010,0010)",
                          "(0010,0020)", "(0010,0040)", "(0010,1010)", "(0018,0015)",
                          "(0018,5101)", "(0020,0011)", "(0020,0013)", "(0028,0002)",
                          "(0028,0004)", "(0028,0030)", "(0028,0100)", "(0028,0101)",
                          "(0028,0102)", "(0028,0103)", "(0028,2110)", "(0028,2114)",
                          "(0002,0002)", "(0002,0010)"}) {
    INFO(tag);
    CHECK(mine.at(tag) == theirs.at(tag));
  }
}

TEST_CASE("dicom: concurrent writes give the serial bytes", "[dicom]") {
  const fs::path scratch = chestlab::test::scratch_dir("dicom_writer_threads");
  const cv::Mat image = synthetic_cxr(256);
  auto info_for = [](int k) {
    chestlab::DicomWriteInfo info;
    info.patient_id = "patient-" + std::to_string(k);
    info.view_position = k % 2 ? "PA" : "AP";
    return info;
  };
  for (int k = 0; k < 8; ++k)
    chestlab::write_dicom_jpeg_baseline((scratch / ("serial" + std::to_string(k))).string(), image,
                                        info_for(k));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = t; k < 8; k += 4)
        chestlab::write_dicom_jpeg_baseline((scratch / ("parallel" + std::to_string(k))).string(),
                                            image, info_for(k));
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 8; ++k) {
    INFO(k);
    CHECK(bytes_of(scratch / ("serial" + std::to_string(k))) ==
          bytes_of(scratch / ("parallel" + std::to_string(k))));
  }
}

TEST_CASE("dicom: writer argument checks", "[dicom]") {
  const fs::path scratch = chestlab::test::scratch_dir("dicom_writer_args");
  chestlab::DicomWriteInfo info;
  info.patient_id = "p";
  CHECK_THROWS_AS(chestlab::write_dicom_jpeg_baseline((scratch / "x.dcm").string(),
                                                      cv::Mat(8, 8, CV_16U), info),
                  std::invalid_argument);
  info.quality = 0;
  CHECK_THROWS_AS(chestlab::write_dicom_jpeg_baseline((scratch / "x.dcm").string(),
                                                      cv::Mat(8, 8, CV_8U), info),
                  std::invalid_argument);
  info.quality = 95;
  info.patient_id.clear();
  CHECK_THROWS_AS(chestlab::write_dicom_jpeg_baseline((scratch / "x.dcm").string(),
                                                      cv::Mat(8, 8, CV_8U), info),
                  std::invalid_argument);
  info.patient_id = "p";
  try {
    chestlab::write_dicom_jpeg_baseline((scratch / "no" / "dir" / "x.dcm").string(),
                                        cv::Mat(8, 8, CV_8U, cv::Scalar(9)), info);
    FAIL("wrote into a missing directory");
  } catch (const DataError& e) {
    CHECK_THAT(e.file, Catch::EndsWith("x.dcm"));
  }
}

// ---- image ops ------------------------------------------------------------------------------

cv::Mat checkerboard(int size) {
  cv::Mat board(size, size, CV_8U);
  for (int r = 0; r < size; ++r)
    for (int c = 0; c < size; ++c) board.at<uchar>(r, c) = ((r + c) % 2) ? 255 : 0;
  return board;
}

double stddev_of(const cv::Mat& m) {
  cv::Scalar mean, stddev;
  cv::meanStdDev(m, mean, stddev);
  return stddev[0];
}

TEST_CASE("image_ops: shrinking is anti-aliased", "[dicom][image_ops]") {
  // A one-pixel checkerboard shrunk by 8 must average to flat grey.
  const cv::Mat small = chestlab::resize_image(checkerboard(512), 64, 64);
  REQUIRE(small.size() == cv::Size(64, 64));
  CHECK(cv::mean(small)[0] == Approx(127.5).margin(1.0));
  CHECK(stddev_of(small) < 1.0);

  // By 7, point sampling (nearest, and bilinear, whose sample points fall on pixel centres
  // here) returns a full-contrast checkerboard; area averaging leaves 25/49 vs 24/49 grey.
  const cv::Mat board7 = checkerboard(448);
  cv::Mat sampled;
  cv::resize(board7, sampled, cv::Size(64, 64), 0, 0, cv::INTER_LINEAR);
  REQUIRE(stddev_of(sampled) > 100.0);  // the pattern does alias without anti-aliasing
  const cv::Mat by7 = chestlab::resize_image(board7, 64, 64);
  CHECK(stddev_of(by7) < 5.0);
  CHECK(cv::mean(by7)[0] == Approx(127.5).margin(3.0));

  // Float images too, and a mixed shrink/enlarge keeps the shrinking axis anti-aliased.
  cv::Mat board_f;
  board7.convertTo(board_f, CV_32F, 1.0 / 255.0);
  const cv::Mat mixed = chestlab::resize_image(board_f, 64, 1024);
  REQUIRE(mixed.size() == cv::Size(1024, 64));
  CHECK(cv::mean(mixed)[0] == Approx(0.5).margin(0.02));
  CHECK(stddev_of(mixed) < 0.05);
}

TEST_CASE("image_ops: enlarging, masks, normalisation, window", "[dicom][image_ops]") {
  cv::Mat ramp(4, 4, CV_32F);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) ramp.at<float>(r, c) = static_cast<float>(r * 4 + c);
  const cv::Mat big = chestlab::resize_image(ramp, 16, 16, chestlab::Upscale::lanczos4);
  CHECK(big.size() == cv::Size(16, 16));
  CHECK(big.at<float>(15, 15) > big.at<float>(0, 0));

  cv::Mat labels = (cv::Mat_<uchar>(2, 2) << 0, 1, 2, 3);
  const cv::Mat up = chestlab::resize_mask(labels, 7, 9);
  CHECK(up.size() == cv::Size(9, 7));
  std::set<int> values(up.begin<uchar>(), up.end<uchar>());
  CHECK(values == std::set<int>{0, 1, 2, 3});

  const cv::Mat unit = chestlab::normalize_minmax(ramp);
  CHECK(unit.at<float>(0, 0) == 0.0f);
  CHECK(unit.at<float>(3, 3) == 1.0f);
  CHECK(unit.at<float>(1, 1) == Approx(5.0 / 15.0));
  CHECK(cv::countNonZero(chestlab::normalize_minmax(cv::Mat(3, 3, CV_16S, cv::Scalar(7)))) == 0);

  // center 40, width 400 (a CT soft-tissue window): edges -160.5 and 239.5.
  cv::Mat hu = (cv::Mat_<float>(1, 4) << -1000.f, -160.5f, 39.5f, 3000.f);
  const cv::Mat w = chestlab::window(hu, 40, 400);
  CHECK(w.at<float>(0, 0) == 0.0f);
  CHECK(w.at<float>(0, 1) == Approx(0.0).margin(1e-6));
  CHECK(w.at<float>(0, 2) == Approx(0.5));
  CHECK(w.at<float>(0, 3) == 1.0f);
  CHECK_THROWS_AS(chestlab::window(hu, 40, 0.5), std::invalid_argument);
  const cv::Mat u8 = chestlab::unit_to_u8(w);
  CHECK(u8.type() == CV_8U);
  CHECK(u8.at<uchar>(0, 3) == 255);
}

TEST_CASE("image_ops: PNG and TIFF I/O", "[dicom][image_ops]") {
  const fs::path scratch = chestlab::test::scratch_dir("image_ops_io");
  cv::Mat u16(5, 7, CV_16U);
  for (int k = 0; k < 35; ++k) u16.at<uint16_t>(k / 7, k % 7) = static_cast<uint16_t>(k * 1800);
  chestlab::write_png((scratch / "a.png").string(), u16);
  const cv::Mat back = chestlab::read_image((scratch / "a.png").string());
  CHECK(back.type() == CV_16U);
  CHECK(cv::norm(back, u16, cv::NORM_INF) == 0.0);
  cv::Mat u8 = cv::Mat(3, 3, CV_8U, cv::Scalar(200));
  chestlab::write_png((scratch / "b.png").string(), u8);
  CHECK(chestlab::read_image((scratch / "b.png").string()).at<uchar>(2, 2) == 200);

  CHECK_THROWS_AS(chestlab::write_png((scratch / "f.png").string(), cv::Mat(2, 2, CV_32F)),
                  std::invalid_argument);
  try {
    chestlab::write_png((scratch / "missing" / "c.png").string(), u8);
    FAIL("wrote into a missing directory");
  } catch (const DataError& e) {
    CHECK_THAT(e.file, Catch::EndsWith("c.png"));
  }
  try {
    chestlab::read_image((scratch / "nothing.png").string());
    FAIL("read a missing file");
  } catch (const DataError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("nothing.png"));
  }
  write_bytes(scratch / "junk.png", "not a png at all");
  CHECK_THROWS_AS(chestlab::read_image((scratch / "junk.png").string()), DataError);
}

TEST_CASE("image_ops: reads the shared CT TIFFs as stored", "[dicom][image_ops]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path dir = data / "lung-ct" / "2d_images";
  REQUIRE(fs::is_directory(dir));
  fs::path first;
  for (const auto& e : fs::directory_iterator(dir))
    if (first.empty() || e.path() < first) first = e.path();
  const cv::Mat ct = chestlab::read_image(first.string());
  CHECK(ct.rows == 512);
  CHECK(ct.cols == 512);
  CHECK(ct.channels() == 1);
  CHECK(ct.depth() == CV_16S);  // Hounsfield units need the sign
  double lo = 0, hi = 0;
  cv::minMaxLoc(ct, &lo, &hi);
  CHECK(lo < -500);
}

#include "chestlab/imaging/image_ops.h"

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "chestlab/errors.h"

namespace chestlab {

namespace {

void require_size(const cv::Mat& src, int height, int width, const char* what) {
  if (src.empty()) throw std::invalid_argument(fmt::format("{}: the input image is empty", what));
  if (height <= 0 || width <= 0)
    throw std::invalid_argument(
        fmt::format("{}: target size {}x{} must be positive", what, height, width));
}

void require_single_channel(const cv::Mat& src, const char* what) {
  if (src.empty()) throw std::invalid_argument(fmt::format("{}: the input image is empty", what));
  if (src.channels() != 1)
    throw std::invalid_argument(
        fmt::format("{}: needs a single-channel image, got {} channels", what, src.channels()));
}

}  // namespace

cv::Mat resize_image(const cv::Mat& src, int height, int width, Upscale upscale) {
  require_size(src, height, width, "resize_image");
  // Shrink first with area averaging on the axes that shrink, then interpolate the axes that
  // grow: one cv::resize with a single method would alias one of them when they differ.
  cv::Mat shrunk = src;
  const int mid_h = std::min(height, src.rows);
  const int mid_w = std::min(width, src.cols);
  if (mid_h != src.rows || mid_w != src.cols)
    cv::resize(src, shrunk, cv::Size(mid_w, mid_h), 0, 0, cv::INTER_AREA);
  if (mid_h == height && mid_w == width) return shrunk.data == src.data ? src.clone() : shrunk;
  cv::Mat out;
  const int method = upscale == Upscale::lanczos4 ? cv::INTER_LANCZOS4 : cv::INTER_CUBIC;
  cv::resize(shrunk, out, cv::Size(width, height), 0, 0, method);
  return out;
}

cv::Mat resize_mask(const cv::Mat& mask, int height, int width) {
  require_size(mask, height, width, "resize_mask");
  cv::Mat out;
  cv::resize(mask, out, cv::Size(width, height), 0, 0, cv::INTER_NEAREST);
  return out;
}

cv::Mat normalize_minmax(const cv::Mat& src) {
  require_single_channel(src, "normalize_minmax");
  double lo = 0.0, hi = 0.0;
  cv::minMaxLoc(src, &lo, &hi);
  if (!(hi > lo)) return cv::Mat::zeros(src.size(), CV_32F);
  cv::Mat out;
  src.convertTo(out, CV_32F, 1.0 / (hi - lo), -lo / (hi - lo));
  return out;
}

cv::Mat window(const cv::Mat& src, double center, double width) {
  require_single_channel(src, "window");
  if (!(width >= 1.0))
    throw std::invalid_argument(fmt::format("window: width {} must be >= 1 (DICOM)", width));
  cv::Mat out;
  if (width == 1.0) {
    // The standard's formula degenerates to a step at center - 0.5.
    src.convertTo(out, CV_32F);
    cv::threshold(out, out, center - 0.5, 1.0, cv::THRESH_BINARY);
    return out;
  }
  // y = ((x - (c - 0.5)) / (w - 1) + 0.5) clamped to [0, 1]: exactly the piecewise
  // definition, whose end points are c - 0.5 -/+ (w - 1) / 2.
  const double scale = 1.0 / (width - 1.0);
  src.convertTo(out, CV_32F, scale, 0.5 - (center - 0.5) * scale);
  cv::min(out, 1.0, out);
  cv::max(out, 0.0, out);
  return out;
}

cv::Mat unit_to_u8(const cv::Mat& unit) {
  if (unit.depth() != CV_32F && unit.depth() != CV_64F)
    throw std::invalid_argument("unit_to_u8: needs a CV_32F or CV_64F image in [0, 1]");
  cv::Mat out;
  unit.convertTo(out, CV_8U, 255.0);  // convertTo rounds and saturates
  return out;
}

void write_png(const std::string& path, const cv::Mat& image) {
  if (image.empty()) throw std::invalid_argument("write_png: the image is empty (" + path + ")");
  const int depth = image.depth();
  const int channels = image.channels();
  if ((depth != CV_8U && depth != CV_16U) || (channels != 1 && channels != 3 && channels != 4))
    throw std::invalid_argument(fmt::format(
        "write_png({}): PNG holds 8- or 16-bit unsigned images with 1, 3 or 4 channels; "
        "convert first (got depth {} with {} channels)",
        path, depth, channels));
  std::vector<unsigned char> bytes;
  try {
    if (!cv::imencode(".png", image, bytes)) throw DataError(path, "OpenCV could not encode PNG");
  } catch (const cv::Exception& e) {
    throw DataError(path, std::string("OpenCV could not encode PNG: ") + e.what());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw DataError(path, std::string("cannot open for writing: ") + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw DataError(path, "write failed (disk full?)");
}

cv::Mat read_image(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(path, "no such file");
  cv::Mat image;
  try {
    image = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw DataError(path, std::string("OpenCV could not decode the image: ") + e.what());
  }
  if (image.empty())
    throw DataError(path, "OpenCV could not decode it as an image (PNG, TIFF, ...); "
                          "damaged or of an unsupported format");
  return image;
}

}  // namespace chestlab

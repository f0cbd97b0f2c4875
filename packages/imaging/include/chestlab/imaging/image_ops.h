// Small image operations shared by the datasets, the loader and `chestlab inspect`.
// All take and return cv::Mat; none modifies its input.
#pragma once

#include <opencv2/core.hpp>

#include <string>

namespace chestlab {

// Interpolation used on an axis that grows (shrinking always uses cv::INTER_AREA).
enum class Upscale { cubic, lanczos4 };

// Resizes to height x width. An axis that shrinks is area-averaged (anti-aliased: no moire
// from fine patterns); an axis that grows is interpolated with `upscale`. Cubic and Lanczos
// can overshoot the input range slightly on float images. Any depth cv::resize accepts.
cv::Mat resize_image(const cv::Mat& src, int height, int width, Upscale upscale = Upscale::cubic);

// Nearest-neighbour resize: labels stay labels (no new values appear).
cv::Mat resize_mask(const cv::Mat& mask, int height, int width);

// Single-channel image -> CV_32F scaled to [0, 1] by its own min and max; a constant image
// becomes all zeros.
cv::Mat normalize_minmax(const cv::Mat& src);

// DICOM linear VOI window (PS3.3 C.11.2.1.2.1): single-channel image -> CV_32F in [0, 1].
// width must be >= 1 (std::invalid_argument otherwise).
cv::Mat window(const cv::Mat& src, double center, double width);

// CV_32F/CV_64F image in [0, 1] -> CV_8U (rounded, clamped).
cv::Mat unit_to_u8(const cv::Mat& unit);

// PNG through cv::imwrite; CV_8U or CV_16U with 1, 3 or 4 channels. Throws DataError
// naming the path when it cannot be written, std::invalid_argument for another depth.
void write_png(const std::string& path, const cv::Mat& image);

// PNG or TIFF (or anything else imread knows) with cv::IMREAD_UNCHANGED: depth and
// channels as stored. Throws DataError naming the file when missing or undecodable.
cv::Mat read_image(const std::string& path);

}  // namespace chestlab

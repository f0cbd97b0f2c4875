// libjpeg-turbo decoding of 8-bit greyscale JPEG streams, scaled in the DCT domain: the
// decoder behind read_dicom's JPEG fast path (see dicom.h, DicomReadOptions::fast_jpeg).
// Private to the imaging package.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace chestlab::turbo {

// The smallest of 1, 1/2, 1/4, 1/8 (returned as its denominator) that keeps a rows x columns
// image at least min_rows x min_columns; 1 when even full size is smaller.
int scale_denominator(int rows, int columns, int min_rows, int min_columns);

struct GreyFrame {
  cv::Mat pixels;  // CV_8UC1, ceil(rows / denominator) x ceil(columns / denominator)
  int denominator = 1;
};

// Why libjpeg-turbo did not deliver the frame (the caller then decodes it another way).
struct Refusal {
  std::string reason;
};

// Decodes `jpeg`, which must be a one-component 8-bit stream of exactly rows x columns
// pixels, scaled by 1/denominator. Anything else - another size, colour, 12-bit or lossless
// data, a damaged stream (libjpeg-turbo's warnings included) - is a Refusal, never an
// exception. Thread-safe (one decoder instance per call).
std::variant<GreyFrame, Refusal> decode_grey(const std::vector<std::uint8_t>& jpeg, int rows, int columns,
                                             int denominator);

}  // namespace chestlab::turbo

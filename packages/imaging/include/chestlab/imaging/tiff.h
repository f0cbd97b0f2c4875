// TIFF reading through libtiff: single-channel images as stored, with the sample type kept
// (Hounsfield units stay signed). Used by the lung_ct dataset.
#pragma once

#include <opencv2/core.hpp>

#include <string>

namespace chestlab {

// The first image of a TIFF file as a single-channel cv::Mat of the stored sample type:
// 8-bit unsigned or signed (CV_8U / CV_8S), 16-bit unsigned or signed (CV_16U / CV_16S),
// 32-bit signed integer (CV_32S), 32- or 64-bit float (CV_32F / CV_64F). Strips or tiles,
// any compression libtiff decodes (none, LZW, Deflate, PackBits, ...). libtiff's messages go
// into the error instead of stderr. Throws DataError naming the file when it is missing, not a
// TIFF, damaged, has more than one sample per pixel, or a sample type outside that list.
cv::Mat read_tiff(const std::string& path);

// True when the file starts with a TIFF header ("II*\0" or "MM\0*"), whatever its name.
bool is_tiff_file(const std::string& path);

}  // namespace chestlab

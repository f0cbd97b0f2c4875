// Writes small TIFFs with libtiff directly (not through chestlab), so the tests of the
// TIFF reader and of lung_ct check it against an independent writer.
#pragma once

#include <tiffio.h>

#include <opencv2/core.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace chestlab::test {

// A single-channel cv::Mat as a strip TIFF (optionally tiled) with the matching sample format.
inline void write_test_tiff(const std::string& path, const cv::Mat& image, int compression = COMPRESSION_NONE,
                            int tile = 0) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  if (!tif) throw std::runtime_error("cannot create " + path);
  int bits = 8, format = SAMPLEFORMAT_UINT;
  switch (image.depth()) {
    case CV_8U: bits = 8; format = SAMPLEFORMAT_UINT; break;
    case CV_8S: bits = 8; format = SAMPLEFORMAT_INT; break;
    case CV_16U: bits = 16; format = SAMPLEFORMAT_UINT; break;
    case CV_16S: bits = 16; format = SAMPLEFORMAT_INT; break;
    case CV_32S: bits = 32; format = SAMPLEFORMAT_INT; break;
    case CV_32F: bits = 32; format = SAMPLEFORMAT_IEEEFP; break;
    case CV_64F: bits = 64; format = SAMPLEFORMAT_IEEEFP; break;
    default: TIFFClose(tif); throw std::runtime_error("write_test_tiff: unsupported depth");
  }
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(image.cols));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(image.rows));
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(image.channels()));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(bits));
  TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, static_cast<uint16_t>(format));
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, image.channels() == 1 ? PHOTOMETRIC_MINISBLACK : PHOTOMETRIC_RGB);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, static_cast<uint16_t>(compression));
  const std::size_t pixel = image.elemSize();
  if (tile > 0) {
    TIFFSetField(tif, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(tile));
    TIFFSetField(tif, TIFFTAG_TILELENGTH, static_cast<uint32_t>(tile));
    std::string buffer(static_cast<std::size_t>(tile) * tile * pixel, '\0');
    for (int y = 0; y < image.rows; y += tile)
      for (int x = 0; x < image.cols; x += tile) {
        std::fill(buffer.begin(), buffer.end(), '\0');
        for (int r = 0; r < tile && y + r < image.rows; ++r)
          for (int c = 0; c < tile && x + c < image.cols; ++c)
            std::memcpy(&buffer[(static_cast<std::size_t>(r) * tile + c) * pixel], image.ptr(y + r) + (x + c) * pixel,
                        pixel);
        TIFFWriteTile(tif, buffer.data(), static_cast<uint32_t>(x), static_cast<uint32_t>(y), 0, 0);
      }
  } else {
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, static_cast<uint32_t>(2));
    for (int y = 0; y < image.rows; ++y)
      if (TIFFWriteScanline(tif, const_cast<uchar*>(image.ptr(y)), static_cast<uint32_t>(y), 0) < 0) {
        TIFFClose(tif);
        throw std::runtime_error("cannot write " + path);
      }
  }
  TIFFClose(tif);
}

}  // namespace chestlab::test

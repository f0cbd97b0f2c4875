#include "chestlab/imaging/tiff.h"

#include <fmt/format.h>
#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "chestlab/errors.h"

namespace chestlab {

namespace {

// libtiff's messages for one file, collected instead of printed.
struct Messages {
  std::string errors;
};

int collect_error(TIFF*, void* user, const char* module, const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  auto* messages = static_cast<Messages*>(user);
  if (!messages->errors.empty()) messages->errors += "; ";
  messages->errors += module != nullptr && *module != '\0' ? fmt::format("{}: {}", module, text) : text;
  return 1;  // handled: nothing reaches stderr
}

int ignore_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

int cv_type(std::uint16_t bits, std::uint16_t format) {
  if (format == SAMPLEFORMAT_UINT) {
    if (bits == 8) return CV_8U;
    if (bits == 16) return CV_16U;
  } else if (format == SAMPLEFORMAT_INT) {
    if (bits == 8) return CV_8S;
    if (bits == 16) return CV_16S;
    if (bits == 32) return CV_32S;
  } else if (format == SAMPLEFORMAT_IEEEFP) {
    if (bits == 32) return CV_32F;
    if (bits == 64) return CV_64F;
  }
  return -1;
}

std::string format_name(std::uint16_t format) {
  switch (format) {
    case SAMPLEFORMAT_UINT: return "unsigned integer";
    case SAMPLEFORMAT_INT: return "signed integer";
    case SAMPLEFORMAT_IEEEFP: return "floating point";
    default: return fmt::format("sample format {}", format);
  }
}

}  // namespace

bool is_tiff_file(const std::string& path) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in.read(magic, 4)) return false;
  return (magic[0] == 'I' && magic[1] == 'I' && magic[2] == 42 && magic[3] == 0) ||
         (magic[0] == 'M' && magic[1] == 'M' && magic[2] == 0 && magic[3] == 42);
}

cv::Mat read_tiff(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(path, "no such file");
  Messages messages;
  std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(), TIFFOpenOptionsFree);
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), collect_error, &messages);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), ignore_warning, nullptr);
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(TIFFOpenExt(path.c_str(), "r", options.get()), TIFFClose);
  auto fail = [&](const std::string& what) {
    return DataError(path, messages.errors.empty() ? what : what + " (libtiff: " + messages.errors + ")");
  };
  if (!tif) throw fail("not a readable TIFF file");

  std::uint32_t width = 0, height = 0;
  std::uint16_t samples = 1, bits = 1, format = SAMPLEFORMAT_UINT;
  if (!TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &height) ||
      width == 0 || height == 0)
    throw fail("the TIFF has no image size");
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLEFORMAT, &format);
  if (samples != 1)
    throw fail(fmt::format("{} samples per pixel; only single-channel (grey) TIFFs are read", samples));
  const int type = cv_type(bits, format);
  if (type < 0)
    throw fail(fmt::format("{}-bit {} samples are not supported (8/16-bit integers, 32-bit signed integers, "
                           "32/64-bit floats)",
                           bits, format_name(format)));

  cv::Mat image(static_cast<int>(height), static_cast<int>(width), type);
  const std::size_t row_bytes = image.elemSize() * width;
  if (TIFFIsTiled(tif.get())) {
    std::uint32_t tile_w = 0, tile_h = 0;
    TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &tile_w);
    TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &tile_h);
    if (tile_w == 0 || tile_h == 0) throw fail("tiled TIFF without a tile size");
    std::vector<unsigned char> tile(static_cast<std::size_t>(TIFFTileSize(tif.get())));
    const std::size_t pixel = image.elemSize();
    for (std::uint32_t y = 0; y < height; y += tile_h) {
      for (std::uint32_t x = 0; x < width; x += tile_w) {
        if (TIFFReadTile(tif.get(), tile.data(), x, y, 0, 0) < 0)
          throw fail(fmt::format("cannot decode the tile at ({}, {})", x, y));
        const std::uint32_t rows = std::min(tile_h, height - y), cols = std::min(tile_w, width - x);
        for (std::uint32_t r = 0; r < rows; ++r)
          std::memcpy(image.ptr(static_cast<int>(y + r)) + x * pixel, tile.data() + r * tile_w * pixel, cols * pixel);
      }
    }
  } else {
    if (static_cast<std::size_t>(TIFFScanlineSize(tif.get())) != row_bytes)
      throw fail("unexpected scanline size (bit-packed or unusual layout)");
    for (std::uint32_t y = 0; y < height; ++y)
      if (TIFFReadScanline(tif.get(), image.ptr(static_cast<int>(y)), y, 0) < 0)
        throw fail(fmt::format("cannot decode row {} of {}", y, height));
  }
  return image;
}

}  // namespace chestlab

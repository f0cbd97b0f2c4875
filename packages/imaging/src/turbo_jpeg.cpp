// libjpeg-turbo through its TurboJPEG API. See turbo_jpeg.h.
#include "turbo_jpeg.h"

#include <turbojpeg.h>

#include <fmt/format.h>

#include <memory>

namespace chestlab::turbo {

namespace {

struct HandleCloser {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using Decompressor = std::unique_ptr<void, HandleCloser>;

// TurboJPEG writes its error text into the handle; a null handle has a global one.
std::string error_text(void* handle) {
  const char* text = tjGetErrorStr2(handle);
  return text != nullptr ? text : "unknown error";
}

tjscalingfactor factor_of(int denominator) { return tjscalingfactor{1, denominator}; }

}  // namespace

int scale_denominator(int rows, int columns, int min_rows, int min_columns) {
  for (int denominator : {8, 4, 2}) {
    const tjscalingfactor f = factor_of(denominator);
    if (TJSCALED(rows, f) >= min_rows && TJSCALED(columns, f) >= min_columns) return denominator;
  }
  return 1;
}

std::variant<GreyFrame, Refusal> decode_grey(const std::vector<std::uint8_t>& jpeg, int rows, int columns,
                                             int denominator) {
  if (jpeg.empty()) return Refusal{"the JPEG stream is empty"};
  Decompressor handle(tjInitDecompress());
  if (!handle) return Refusal{"libjpeg-turbo could not start: " + error_text(nullptr)};
  int width = 0, height = 0, subsampling = -1, colourspace = -1;
  // Reading the header also refuses 12-bit and lossless streams (this API decodes 8-bit DCT only).
  if (tjDecompressHeader3(handle.get(), jpeg.data(), static_cast<unsigned long>(jpeg.size()), &width, &height,
                          &subsampling, &colourspace) != 0)
    return Refusal{"libjpeg-turbo cannot read the JPEG header: " + error_text(handle.get())};
  if (colourspace != TJCS_GRAY || subsampling != TJSAMP_GRAY)
    return Refusal{"the JPEG stream is not single-component greyscale"};
  if (width != columns || height != rows)
    return Refusal{fmt::format("the JPEG stream is {} x {} but the header says {} x {}", height, width, rows,
                               columns)};
  const tjscalingfactor f = factor_of(denominator);
  GreyFrame out;
  out.denominator = denominator;
  out.pixels.create(TJSCALED(rows, f), TJSCALED(columns, f), CV_8UC1);
  // Stop on warnings: libjpeg-turbo would otherwise fill a damaged stream's missing part
  // with grey and report success-with-warning; the exact path refuses such a stream.
  const int flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING;
  if (tjDecompress2(handle.get(), jpeg.data(), static_cast<unsigned long>(jpeg.size()), out.pixels.ptr<unsigned char>(),
                    out.pixels.cols, static_cast<int>(out.pixels.step[0]), out.pixels.rows, TJPF_GRAY, flags) != 0)
    return Refusal{"libjpeg-turbo failed to decode: " + error_text(handle.get())};
  return out;
}

}  // namespace chestlab::turbo

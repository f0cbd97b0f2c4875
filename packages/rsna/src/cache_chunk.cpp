#include "cache_chunk.h"

#include <zlib.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

namespace chestlab::rsna::cache_chunk {

namespace {

// Byte planes of HDF5's shuffle filter for 2-byte elements. Written byte by byte rather than
// by memcpy so that the stored order is little-endian whatever the host's order.
std::vector<unsigned char> shuffled(const cv::Mat& pixels) {
  const std::size_t n = pixels.total();
  const auto* values = pixels.ptr<std::uint16_t>();
  std::vector<unsigned char> planes(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    planes[i] = static_cast<unsigned char>(values[i] & 0xFFu);
    planes[n + i] = static_cast<unsigned char>(values[i] >> 8);
  }
  return planes;
}

void unshuffle(const unsigned char* planes, std::size_t n, std::uint16_t* values) {
  for (std::size_t i = 0; i < n; ++i)
    values[i] = static_cast<std::uint16_t>(planes[i] | (static_cast<unsigned>(planes[n + i]) << 8));
}

}  // namespace

std::size_t max_encoded_size(std::size_t pixel_count) { return compressBound(static_cast<uLong>(2 * pixel_count)); }

std::vector<unsigned char> encode(const cv::Mat& pixels, int deflate_level) {
  if (pixels.type() != CV_16UC1 || !pixels.isContinuous())
    throw std::invalid_argument("cache_chunk::encode: needs a continuous CV_16UC1 matrix");
  const std::vector<unsigned char> planes = shuffled(pixels);
  std::vector<unsigned char> out(max_encoded_size(pixels.total()));
  uLongf size = static_cast<uLongf>(out.size());
  const int rc = compress2(out.data(), &size, planes.data(), static_cast<uLong>(planes.size()), deflate_level);
  if (rc != Z_OK) throw std::runtime_error("zlib cannot compress a cache entry (out of memory?)");
  out.resize(size);
  return out;
}

bool decode(const unsigned char* stored, std::size_t size, cv::Mat& pixels) {
  if (pixels.type() != CV_16UC1 || !pixels.isContinuous())
    throw std::invalid_argument("cache_chunk::decode: needs a continuous CV_16UC1 matrix");
  if (size > std::numeric_limits<uLong>::max()) return false;
  const std::size_t n = pixels.total();
  std::vector<unsigned char> planes(2 * n);
  uLongf produced = static_cast<uLongf>(planes.size());
  uLong consumed = static_cast<uLong>(size);
  // uncompress2 fails on a bad stream, a wrong Adler-32 or more output than room, and says
  // how much it read: a shorter output or bytes after the stream are damage too.
  const int rc = uncompress2(planes.data(), &produced, stored, &consumed);
  if (rc != Z_OK || produced != planes.size() || consumed != size) return false;
  unshuffle(planes.data(), n, pixels.ptr<std::uint16_t>());
  return true;
}

}  // namespace chestlab::rsna::cache_chunk

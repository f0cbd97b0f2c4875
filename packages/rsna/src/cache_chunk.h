// The stored form of one cache entry, made and decoded without HDF5 so that it runs outside
// HDF5's global lock: HDF5 then only moves the bytes (H5Dwrite_chunk / H5Dread_chunk).
//
// The bytes are exactly what HDF5's own pipeline "shuffle, then deflate" makes of a
// little-endian uint16 chunk, so h5py and H5Dread still read every entry:
//   shuffle  the first (low) byte of every element, then the second (high) byte;
//   deflate  one zlib stream (compress2), whose Adler-32 trailer zlib checks on inflate.
// Private to the rsna package (src/).
#pragma once

#include <cstddef>
#include <vector>

#include <opencv2/core.hpp>

namespace chestlab::rsna::cache_chunk {

// Shuffled and deflated bytes of a continuous CV_16UC1 matrix. Throws std::runtime_error
// only if zlib fails (out of memory).
std::vector<unsigned char> encode(const cv::Mat& pixels, int deflate_level);

// Decodes `stored` into `pixels` (already allocated, continuous CV_16UC1). False when the bytes
// are not one complete zlib stream that inflates, checksum included, to exactly the matrix's
// size with nothing after it: the entry is damaged.
bool decode(const unsigned char* stored, std::size_t size, cv::Mat& pixels);

// The most bytes encode() can produce for `pixel_count` pixels (zlib's bound): a stored
// chunk larger than this cannot be an entry of this cache.
std::size_t max_encoded_size(std::size_t pixel_count);

}  // namespace chestlab::rsna::cache_chunk

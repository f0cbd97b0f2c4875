// Preprocessing of RSNA radiographs (DICOM -> window or min-max -> anti-aliased resize) and
// an optional HDF5 cache of its results, keyed by patient id. Torch-free (the rsna package).
//
// Pixel format: the prepared image is a CV_16U matrix holding round(65535 * v) for the
// [0, 1] float v. The source is 8-bit JPEG, but after windowing and area-averaging v is no
// longer a multiple of 1/255, so uint8 would lose information; float32 would double the
// cache's size for nothing (a 16-bit step, 1.5e-5, is far below the source's 1/255 step);
// float16 has coarser steps than uint16 near 1. The dataset quantises to 16 bits with or
// without a cache, so a run gives identical numbers with no cache, a cold one or a warm one.
//
// Cache file layout (see docs/rsna.md):
//   /                  attributes: format, format_version, reader_version, image_size,
//                      window, multiframe, decode, pixels -- every parameter the pixels
//                      depend on
//   /images/<id>       uint16 [S, S], one chunk, shuffle + deflate (zlib's Adler-32 checks
//                      it); attributes original_rows, original_cols (the DICOM's size).
//                      Entries are read and written as raw chunks (H5Dread_chunk /
//                      H5Dwrite_chunk) and inflated/deflated outside HDF5's global lock, so
//                      the loader's workers decode in parallel; any other pipeline (older
//                      files had Fletcher-32 too) is read by H5Dread.
// A file whose attributes differ from the requested parameters, that is not HDF5, that
// HDF5 cannot open, or whose index breaks while in use is deleted and built again (said on
// the log). A damaged entry (checksum or size wrong, attributes missing after a crash) is
// dropped and made again. Entries are flushed to disk every few seconds, so a crash loses
// at most the last few.
//
// One process per cache file: a second process that opens a cache in use (an exclusive
// flock on `<path>.lock`) runs without it and says so, rather than corrupt it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "chestlab/imaging/dicom.h"

namespace chestlab::rsna {

// Bumped whenever preprocess_dicom() changes what it returns: older caches then rebuild.
constexpr int kRsnaReaderVersion = 1;
constexpr int kRsnaCacheFormatVersion = 1;

struct RsnaPreprocess {
  int image_size = 256;
  std::vector<double> window;  // {} = min-max normalisation, or {center, width}
  MultiFramePolicy multiframe = MultiFramePolicy::first;
  // true ("fast"): 8-bit grey JPEG files are decoded by libjpeg-turbo, scaled down in the DCT
  // domain to the smallest of 1/1..1/8 that keeps image_size (read_dicom's JPEG fast path);
  // false ("exact"): DCMTK decodes every file at full size. The contrast stretch of min-max
  // normalisation then uses the smaller image's range (docs/rsna.md has the differences).
  bool fast_decode = true;

  // Throws std::invalid_argument naming the field: image_size in 1..16384, window empty or
  // two values with width >= 1.
  void validate() const;
  // "min-max" or "center=40 width=400" (shortest round-trip decimal forms).
  std::string window_text() const;
  // "fast" or "exact".
  const char* decode_text() const;
};

struct PreparedImage {
  cv::Mat pixels;  // CV_16UC1 image_size x image_size, round(65535 * v)
  int original_rows = 0;
  int original_cols = 0;
};

// Reads and prepares one file: DICOM decode (read_dicom, on its JPEG fast path when
// fast_decode; the image is then already at most 2x larger), then the DICOM VOI window when
// `window` is given, else min-max normalisation of the modality values, then resize_image()
// to image_size x image_size (area averaging when shrinking), then 16-bit quantisation.
// Throws DataError(path, reason) for a missing or undecodable file.
PreparedImage preprocess_dicom(const std::string& path, const RsnaPreprocess& params);

// CV_16U -> CV_32F in [0, 1] (divides by 65535).
cv::Mat unit_from_u16(const cv::Mat& pixels);

class RsnaImageCache {
 public:
  using Log = std::function<void(const std::string&)>;
  // Opens or creates `path` (and its folder) for `params`, rebuilding it when it does not
  // match or is damaged. `log` receives one line per notable event (stderr by default).
  // Throws std::invalid_argument for invalid params, DataError when the file cannot be
  // created at all.
  RsnaImageCache(std::string path, RsnaPreprocess params, Log log = {});
  ~RsnaImageCache();
  RsnaImageCache(const RsnaImageCache&) = delete;
  RsnaImageCache& operator=(const RsnaImageCache&) = delete;

  // The entry for `key`, or nullopt (absent, damaged or cache unusable). Thread-safe.
  std::optional<PreparedImage> get(const std::string& key);
  // Stores an entry (a key already present is left as it is). Thread-safe. Never throws
  // for cache trouble: a cache that breaks is rebuilt, or disabled with a log line.
  void put(const std::string& key, const PreparedImage& image);
  // get(), else make() (run without holding the cache's lock) and put().
  PreparedImage get_or_make(const std::string& key, const std::function<PreparedImage()>& make);
  void flush();

  struct Stats {
    std::size_t hits = 0;
    std::size_t misses = 0;
    std::size_t writes = 0;
    std::size_t direct_reads = 0;  // hits inflated outside HDF5's lock (the rest: H5Dread)
  };
  Stats stats() const;
  // Entries in the file now.
  std::size_t entries() const;
  // False when another process holds the cache or it broke beyond repair.
  bool usable() const;
  // What opening did: "opened", "created", "rebuilt (<reason>)" or "not used (<reason>)".
  std::string open_outcome() const;
  const std::string& path() const { return path_; }
  const RsnaPreprocess& params() const { return params_; }

 private:
  struct Handles;
  struct StoredEntry;
  void open_or_rebuild();
  std::optional<StoredEntry> read_entry(const std::string& key);
  std::nullopt_t drop_damaged(const std::string& key, const char* why);
  void rebuild(const std::string& reason);
  void disable(const std::string& reason);
  void maybe_flush();

  std::string path_;
  RsnaPreprocess params_;
  Log log_;
  mutable std::mutex mutex_;
  std::unique_ptr<Handles> h_;
  Stats stats_;
  std::string outcome_;
};

}  // namespace chestlab::rsna

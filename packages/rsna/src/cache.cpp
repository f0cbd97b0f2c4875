#include "chestlab/rsna/cache.h"

#include <hdf5.h>

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "chestlab/engine/file_lock.h"
#include "chestlab/engine/hdf5.h"
#include "chestlab/errors.h"
#include "chestlab/imaging/image_ops.h"
#include "cache_chunk.h"

namespace fs = std::filesystem;

namespace chestlab::rsna {

// ---- preprocessing ----------------------------------------------------------------------

void RsnaPreprocess::validate() const {
  if (image_size < 1 || image_size > kMaxDicomDimension)
    throw std::invalid_argument(
        fmt::format("image_size must be in 1..{}, got {}", kMaxDicomDimension, image_size));
  if (!window.empty() && window.size() != 2)
    throw std::invalid_argument(fmt::format(
        "window must be [] (min-max normalisation) or [center, width], got {} value(s)", window.size()));
  if (window.size() == 2 && !(window[1] >= 1.0))
    throw std::invalid_argument(fmt::format("window width must be >= 1 (DICOM), got {}", window[1]));
}

std::string RsnaPreprocess::window_text() const {
  if (window.empty()) return "min-max";
  return fmt::format("center={} width={}", window[0], window[1]);
}

const char* RsnaPreprocess::decode_text() const { return fast_decode ? "fast" : "exact"; }

PreparedImage preprocess_dicom(const std::string& path, const RsnaPreprocess& params) {
  DicomReadOptions options;
  options.multiframe = params.multiframe;
  options.fast_jpeg = params.fast_decode;
  options.min_rows = options.min_columns = params.image_size;
  if (!params.window.empty()) {
    options.apply_window = true;
    options.window_center = params.window[0];
    options.window_width = params.window[1];
  }
  DicomImage dicom = read_dicom(path, options);
  const cv::Mat unit = params.window.empty() ? normalize_minmax(dicom.pixels) : dicom.pixels;
  const cv::Mat resized = resize_image(unit, params.image_size, params.image_size);
  PreparedImage out;
  // convertTo rounds and saturates, which also clips the slight overshoot of cubic upscaling.
  resized.convertTo(out.pixels, CV_16U, 65535.0);
  out.original_rows = dicom.info.rows;
  out.original_cols = dicom.info.columns;
  return out;
}

cv::Mat unit_from_u16(const cv::Mat& pixels) {
  if (pixels.type() != CV_16UC1) throw std::invalid_argument("unit_from_u16: needs a CV_16UC1 matrix");
  cv::Mat out;
  pixels.convertTo(out, CV_32F, 1.0 / 65535.0);
  return out;
}

// ---- HDF5 helpers -----------------------------------------------------------------------

namespace {

constexpr const char* kFormatName = "chestlab rsna image cache";
constexpr const char* kPixelEncoding = "uint16 = round(65535 * value), value in [0, 1]";
constexpr const char* kImagesGroup = "/images";
// Deflate level 1 with the shuffle filter: most of the size gain of higher levels at a
// fraction of their time (reading an entry must stay much cheaper than decoding the JPEG).
constexpr int kDeflateLevel = 1;
constexpr std::size_t kFlushEveryWrites = 64;
constexpr double kFlushEverySeconds = 5.0;

// HDF5 of this build is thread-safe but keeps one global lock; one mutex for every cache
// object keeps each get/put a single uninterrupted sequence of HDF5 calls. Only the HDF5 calls
// hold it: entries are deflated and inflated outside it (cache_chunk.h), so the loader's
// workers decode in parallel.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

using hdf5::Handle;
// The error stack is per thread in a thread-safe HDF5: every entry point silences it in the
// thread that calls it.
using hdf5::silence_errors;

// An HDF5 call failed where the cache's structure is concerned.
struct CacheBroken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), value.data()) < 0)
    throw CacheBroken(fmt::format("cannot write attribute {}", name));
}

void write_int_attribute(hid_t object, const char* name, std::int64_t value) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    throw CacheBroken(fmt::format("cannot write attribute {}", name));
}

// nullopt when absent or not a fixed-length string.
std::optional<std::string> read_string_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return std::nullopt;
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  Handle type(H5Aget_type(attr.get()));
  if (!type.ok() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) != 0)
    return std::nullopt;
  std::string value(H5Tget_size(type.get()), '\0');
  Handle mem(H5Tcopy(H5T_C_S1));
  H5Tset_size(mem.get(), value.size());
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  if (H5Aread(attr.get(), mem.get(), value.data()) < 0) return std::nullopt;
  value.resize(std::strlen(value.c_str()));
  return value;
}

std::optional<std::int64_t> read_int_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return std::nullopt;
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  Handle type(H5Aget_type(attr.get()));
  if (!type.ok() || H5Tget_class(type.get()) != H5T_INTEGER) return std::nullopt;
  std::int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) return std::nullopt;
  return value;
}

// Patient ids are UUIDs, but any text must map to one link name: '/' separates groups and
// "." names the group itself, so those (and the escape character) are percent-encoded.
std::string link_name(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '/' || c == '%' || c == '\0') out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else out += c;
  }
  if (out.empty() || out == "." || out == "..") out = "%" + out;
  return std::string(kImagesGroup) + "/" + out;
}

struct ExpectedAttributes {
  std::vector<std::pair<const char*, std::string>> strings;
  std::vector<std::pair<const char*, std::int64_t>> integers;
};

ExpectedAttributes expected_attributes(const RsnaPreprocess& p) {
  return {{{"format", kFormatName},
           {"window", p.window_text()},
           {"multiframe", to_string(p.multiframe)},
           {"decode", p.decode_text()},
           {"pixels", kPixelEncoding}},
          {{"format_version", kRsnaCacheFormatVersion},
           {"reader_version", kRsnaReaderVersion},
           {"image_size", p.image_size}}};
}

// "" when the file's parameters are the requested ones, else what differs.
std::string parameter_mismatch(hid_t file, const RsnaPreprocess& p) {
  std::vector<std::string> diffs;
  const ExpectedAttributes expected = expected_attributes(p);
  for (const auto& [name, want] : expected.strings) {
    const auto have = read_string_attribute(file, name);
    if (!have) diffs.push_back(fmt::format("{} missing", name));
    else if (*have != want) diffs.push_back(fmt::format("{} is '{}', wanted '{}'", name, *have, want));
  }
  for (const auto& [name, want] : expected.integers) {
    const auto have = read_int_attribute(file, name);
    if (!have) diffs.push_back(fmt::format("{} missing", name));
    else if (*have != want) diffs.push_back(fmt::format("{} is {}, wanted {}", name, *have, want));
  }
  std::string out;
  for (const auto& d : diffs) out += (out.empty() ? "" : "; ") + d;
  return out;
}

// The filter of a dataset's pipeline at `index`, with its first client value (the element
// size, for shuffle) in *first_value.
H5Z_filter_t filter_at(hid_t props, unsigned index, unsigned* first_value) {
  unsigned flags = 0;
  std::size_t value_count = 1;
  *first_value = 0;
  return H5Pget_filter2(props, index, &flags, &value_count, first_value, 0, nullptr, nullptr);
}

// True when the entry's one chunk holds what cache_chunk encodes: little-endian uint16, one
// size x size chunk, the pipeline exactly "shuffle (2-byte elements), deflate". Entries of
// other writers (older chestlab versions added Fletcher-32) are read by H5Dread instead.
bool stored_as_cache_chunk(hid_t dataset, int size) {
  Handle type(H5Dget_type(dataset));
  if (!type.ok() || H5Tequal(type.get(), H5T_STD_U16LE) <= 0) return false;
  Handle props(H5Dget_create_plist(dataset));
  if (!props.ok() || H5Pget_layout(props.get()) != H5D_CHUNKED || H5Pget_nfilters(props.get()) != 2) return false;
  hsize_t chunk[2] = {0, 0};
  if (H5Pget_chunk(props.get(), 2, chunk) != 2 || chunk[0] != static_cast<hsize_t>(size) ||
      chunk[1] != static_cast<hsize_t>(size))
    return false;
  unsigned element_size = 0, level = 0;
  return filter_at(props.get(), 0, &element_size) == H5Z_FILTER_SHUFFLE && element_size == 2 &&
         filter_at(props.get(), 1, &level) == H5Z_FILTER_DEFLATE;
}

enum class ChunkRead { read, not_handled, damaged };

// The stored (filtered) bytes of an entry's chunk, without decoding them (H5Dread_chunk).
ChunkRead read_stored_chunk(hid_t dataset, int size, std::vector<unsigned char>& out) {
  if (!stored_as_cache_chunk(dataset, size)) return ChunkRead::not_handled;
  const hsize_t origin[2] = {0, 0};
  hsize_t stored = 0;
  if (H5Dget_chunk_storage_size(dataset, origin, &stored) < 0) return ChunkRead::damaged;
  // Checked before allocating: a damaged index may claim any size.
  const std::size_t pixels = static_cast<std::size_t>(size) * static_cast<std::size_t>(size);
  if (stored == 0 || stored > cache_chunk::max_encoded_size(pixels)) return ChunkRead::damaged;
  out.resize(static_cast<std::size_t>(stored));
  std::uint32_t skipped_filters = 0;
  if (H5Dread_chunk(dataset, H5P_DEFAULT, origin, &skipped_filters, out.data()) < 0) return ChunkRead::damaged;
  // HDF5 stores a chunk unfiltered when an optional filter fails on it; H5Dread knows how.
  return skipped_filters == 0 ? ChunkRead::read : ChunkRead::not_handled;
}

}  // namespace

// ---- the cache --------------------------------------------------------------------------

struct RsnaImageCache::Handles {
  std::optional<FileLock> lock;
  Handle file;
  bool usable = false;
  std::size_t writes_since_flush = 0;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();
  std::size_t damaged_entries = 0;
};

RsnaImageCache::RsnaImageCache(std::string path, RsnaPreprocess params, Log log)
    : path_(std::move(path)), params_(std::move(params)), log_(std::move(log)), h_(std::make_unique<Handles>()) {
  params_.validate();
  if (!log_) log_ = [](const std::string& line) { std::cerr << line << "\n"; };
  std::lock_guard<std::mutex> hdf5(hdf5_mutex());
  std::lock_guard<std::mutex> lock(mutex_);
  silence_errors();
  try {
    open_or_rebuild();
  } catch (...) {
    h_->file.reset();
    h_->lock.reset();  // no destructor runs for a failed constructor
    throw;
  }
}

RsnaImageCache::~RsnaImageCache() {
  std::lock_guard<std::mutex> hdf5(hdf5_mutex());
  std::lock_guard<std::mutex> lock(mutex_);
  silence_errors();
  h_->file.reset();  // closing flushes
  h_->lock.reset();  // after the file is closed
}

void RsnaImageCache::open_or_rebuild() {
  std::error_code ec;
  const fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  const std::string lock_path = path_ + ".lock";
  LockHolder holder;
  try {
    h_->lock = FileLock::try_acquire(lock_path, &holder);
  } catch (const FileLockUnsupported& e) {
    disable(e.what());  // no lock, no safe sharing: the run goes on without the cache
    return;
  } catch (const std::runtime_error& e) {
    throw DataError(path_, e.what());
  }
  if (!h_->lock) {
    disable("another process is using it (" + holder.describe() + ")");
    return;
  }
  if (!fs::exists(path_, ec)) {
    rebuild("");
    return;
  }
  if (H5Fis_hdf5(path_.c_str()) <= 0) {
    rebuild("not an HDF5 file");
    return;
  }
  h_->file = Handle(H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!h_->file.ok()) {
    rebuild("HDF5 cannot open it");
    return;
  }
  const std::string mismatch = parameter_mismatch(h_->file.get(), params_);
  if (!mismatch.empty()) {
    rebuild("made with other parameters: " + mismatch);
    return;
  }
  if (H5Lexists(h_->file.get(), kImagesGroup, H5P_DEFAULT) <= 0) {
    rebuild("it has no /images group");
    return;
  }
  h_->usable = true;
  outcome_ = "opened";
}

// Deletes the file and starts an empty one. `reason` empty: there was no file.
void RsnaImageCache::rebuild(const std::string& reason) {
  h_->file.reset();
  h_->usable = false;
  std::error_code ec;
  fs::remove(path_, ec);
  if (!reason.empty()) log_(fmt::format("rsna cache {}: {}; rebuilding it", path_, reason));
  Handle file(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!file.ok()) throw DataError(path_, "cannot create the HDF5 cache file (is the folder writable?)");
  try {
    const ExpectedAttributes expected = expected_attributes(params_);
    for (const auto& [name, value] : expected.strings) write_string_attribute(file.get(), name, value);
    for (const auto& [name, value] : expected.integers) write_int_attribute(file.get(), name, value);
    Handle group(H5Gcreate2(file.get(), kImagesGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!group.ok()) throw CacheBroken("cannot create /images");
  } catch (const CacheBroken& e) {
    throw DataError(path_, std::string("cannot initialise the cache: ") + e.what());
  }
  H5Fflush(file.get(), H5F_SCOPE_LOCAL);
  h_->file = std::move(file);
  h_->usable = true;
  h_->writes_since_flush = 0;
  outcome_ = reason.empty() ? "created" : "rebuilt (" + reason + ")";
}

void RsnaImageCache::disable(const std::string& reason) {
  h_->file.reset();
  h_->usable = false;
  outcome_ = "not used (" + reason + ")";
  log_(fmt::format("rsna cache {}: {}; running without the cache", path_, reason));
}

// What get() takes from the file under the lock: the entry's stored chunk, decoded after the
// lock is released, or (for a chunk the direct path does not handle) pixels H5Dread decoded.
struct RsnaImageCache::StoredEntry {
  PreparedImage image;  // pixels allocated; already filled when chunk is empty
  std::vector<unsigned char> chunk;
};

std::optional<PreparedImage> RsnaImageCache::get(const std::string& key) {
  std::optional<StoredEntry> stored;
  {
    std::lock_guard<std::mutex> hdf5(hdf5_mutex());
    std::lock_guard<std::mutex> lock(mutex_);
    silence_errors();
    stored = read_entry(key);
  }
  if (!stored) return std::nullopt;
  const bool direct = !stored->chunk.empty();
  if (direct && !cache_chunk::decode(stored->chunk.data(), stored->chunk.size(), stored->image.pixels)) {
    std::lock_guard<std::mutex> hdf5(hdf5_mutex());
    std::lock_guard<std::mutex> lock(mutex_);
    silence_errors();
    drop_damaged(key, "its compressed pixels do not inflate to the image");
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.hits;
  if (direct) ++stats_.direct_reads;
  return std::move(stored->image);
}

// Called with both locks held.
std::optional<RsnaImageCache::StoredEntry> RsnaImageCache::read_entry(const std::string& key) {
  if (!h_->usable) {
    ++stats_.misses;
    return std::nullopt;
  }
  const std::string name = link_name(key);
  const htri_t exists = H5Lexists(h_->file.get(), name.c_str(), H5P_DEFAULT);
  if (exists < 0) {
    // The index itself is unreadable: nothing in this file can be trusted.
    try {
      rebuild("its index is damaged");
    } catch (const DataError& e) {
      disable(e.what());
    }
    ++stats_.misses;
    return std::nullopt;
  }
  if (exists == 0) {
    ++stats_.misses;
    return std::nullopt;
  }
  Handle dataset(H5Dopen2(h_->file.get(), name.c_str(), H5P_DEFAULT));
  if (!dataset.ok()) return drop_damaged(key, "cannot open it");
  Handle space(H5Dget_space(dataset.get()));
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(space.get()) != 2 || H5Sget_simple_extent_dims(space.get(), dims, nullptr) != 2 ||
      dims[0] != static_cast<hsize_t>(params_.image_size) || dims[1] != static_cast<hsize_t>(params_.image_size))
    return drop_damaged(key, "wrong shape");
  const auto rows = read_int_attribute(dataset.get(), "original_rows");
  const auto cols = read_int_attribute(dataset.get(), "original_cols");
  if (!rows || !cols || *rows < 1 || *cols < 1) return drop_damaged(key, "its original size is missing");
  StoredEntry entry;
  entry.image.pixels.create(params_.image_size, params_.image_size, CV_16UC1);
  entry.image.original_rows = static_cast<int>(*rows);
  entry.image.original_cols = static_cast<int>(*cols);
  switch (read_stored_chunk(dataset.get(), params_.image_size, entry.chunk)) {
    case ChunkRead::read:
      return entry;
    case ChunkRead::damaged:
      return drop_damaged(key, "its chunk is unreadable or of an impossible size");
    case ChunkRead::not_handled:
      break;
  }
  entry.chunk.clear();
  if (H5Dread(dataset.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, entry.image.pixels.data) < 0)
    return drop_damaged(key, "checksum or read error");
  return entry;
}

// Called with both locks held. Another thread may have made the entry again since this one
// read it; deleting that good copy only costs one more decode.
std::nullopt_t RsnaImageCache::drop_damaged(const std::string& key, const char* why) {
  if (h_->damaged_entries++ == 0)
    log_(fmt::format("rsna cache {}: entry {} is damaged ({}); making it again", path_, key, why));
  if (h_->usable) H5Ldelete(h_->file.get(), link_name(key).c_str(), H5P_DEFAULT);
  ++stats_.misses;
  return std::nullopt;
}

void RsnaImageCache::put(const std::string& key, const PreparedImage& image) {
  if (image.pixels.type() != CV_16UC1 || image.pixels.rows != params_.image_size ||
      image.pixels.cols != params_.image_size || !image.pixels.isContinuous())
    throw std::invalid_argument(fmt::format("rsna cache: entry {} is not a continuous CV_16UC1 {}x{} matrix", key,
                                            params_.image_size, params_.image_size));
  if (!usable()) return;
  // Shuffled and deflated before the lock is taken: workers filling the cache compress in parallel.
  const std::vector<unsigned char> chunk = cache_chunk::encode(image.pixels, kDeflateLevel);
  std::lock_guard<std::mutex> hdf5(hdf5_mutex());
  std::lock_guard<std::mutex> lock(mutex_);
  silence_errors();
  if (!h_->usable) return;
  const std::string name = link_name(key);
  try {
    const htri_t exists = H5Lexists(h_->file.get(), name.c_str(), H5P_DEFAULT);
    if (exists < 0) throw CacheBroken("its index is damaged");
    if (exists > 0) return;
    const hsize_t dims[2] = {static_cast<hsize_t>(params_.image_size), static_cast<hsize_t>(params_.image_size)};
    Handle space(H5Screate_simple(2, dims, nullptr));
    Handle props(H5Pcreate(H5P_DATASET_CREATE));
    // The pipeline declared is the one cache_chunk applied, so H5Dread and h5py decode the
    // chunk as usual. No Fletcher-32: the zlib stream's Adler-32 already checks every chunk.
    H5Pset_chunk(props.get(), 2, dims);
    H5Pset_shuffle(props.get());
    H5Pset_deflate(props.get(), static_cast<unsigned>(kDeflateLevel));
    Handle dataset(H5Dcreate2(h_->file.get(), name.c_str(), H5T_STD_U16LE, space.get(), H5P_DEFAULT, props.get(),
                          H5P_DEFAULT));
    if (!dataset.ok()) throw CacheBroken("cannot create an entry");
    const hsize_t origin[2] = {0, 0};
    if (H5Dwrite_chunk(dataset.get(), H5P_DEFAULT, 0, origin, chunk.size(), chunk.data()) < 0)
      throw CacheBroken("cannot write an entry (disk full?)");
    // Written last: an entry cut short by a crash lacks them and is made again.
    write_int_attribute(dataset.get(), "original_rows", image.original_rows);
    write_int_attribute(dataset.get(), "original_cols", image.original_cols);
    ++stats_.writes;
    ++h_->writes_since_flush;
    maybe_flush();
  } catch (const CacheBroken& e) {
    try {
      rebuild(e.what());
    } catch (const DataError& again) {
      disable(again.what());
    }
  }
}

void RsnaImageCache::maybe_flush() {
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - h_->last_flush).count();
  if (h_->writes_since_flush < kFlushEveryWrites && since < kFlushEverySeconds) return;
  H5Fflush(h_->file.get(), H5F_SCOPE_LOCAL);
  h_->writes_since_flush = 0;
  h_->last_flush = now;
}

PreparedImage RsnaImageCache::get_or_make(const std::string& key, const std::function<PreparedImage()>& make) {
  if (auto hit = get(key)) return std::move(*hit);
  PreparedImage made = make();
  put(key, made);
  return made;
}

void RsnaImageCache::flush() {
  std::lock_guard<std::mutex> hdf5(hdf5_mutex());
  std::lock_guard<std::mutex> lock(mutex_);
  silence_errors();
  if (!h_->usable) return;
  H5Fflush(h_->file.get(), H5F_SCOPE_LOCAL);
  h_->writes_since_flush = 0;
  h_->last_flush = std::chrono::steady_clock::now();
}

RsnaImageCache::Stats RsnaImageCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::size_t RsnaImageCache::entries() const {
  std::lock_guard<std::mutex> hdf5(hdf5_mutex());
  std::lock_guard<std::mutex> lock(mutex_);
  silence_errors();
  if (!h_->usable) return 0;
  Handle group(H5Gopen2(h_->file.get(), kImagesGroup, H5P_DEFAULT));
  H5G_info_t info{};
  if (!group.ok() || H5Gget_info(group.get(), &info) < 0) return 0;
  return static_cast<std::size_t>(info.nlinks);
}

bool RsnaImageCache::usable() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return h_->usable;
}

std::string RsnaImageCache::open_outcome() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return outcome_;
}

}  // namespace chestlab::rsna

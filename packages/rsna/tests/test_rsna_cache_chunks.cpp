// The preprocessing cache's direct chunk path: entries written as raw shuffled + deflated
// chunks and inflated outside HDF5's lock read back, from several threads at once, exactly
// what a serial H5Dread gives; entries of other pipelines still read; a chunk that does not
// inflate to the image is dropped and made again, never returned.
#include <catch2/catch.hpp>

#include <hdf5.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "chestlab/engine/hdf5.h"
#include "chestlab/rsna/cache.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using hdf5::Handle;

namespace {

constexpr int kSize = 64;

rsna::RsnaPreprocess params64() {
  rsna::RsnaPreprocess p;
  p.image_size = kSize;
  return p;
}

// Entry `i`: noise (compresses to more than its size), gradients and flat images (compress
// well), including the extremes 0 and 65535 whose high and low bytes the shuffle separates.
rsna::PreparedImage test_image(int i) {
  rsna::PreparedImage image;
  image.pixels.create(kSize, kSize, CV_16UC1);
  cv::RNG rng(static_cast<std::uint64_t>(1000 + i));
  switch (i % 4) {
    case 0: rng.fill(image.pixels, cv::RNG::UNIFORM, 0, 65536); break;
    case 1:
      for (int y = 0; y < kSize; ++y)
        for (int x = 0; x < kSize; ++x) image.pixels.at<std::uint16_t>(y, x) = static_cast<std::uint16_t>(x * 1000 + y * 7 + i);
      break;
    case 2: image.pixels.setTo(i % 8 == 2 ? 0 : 65535); break;
    default: rng.fill(image.pixels, cv::RNG::NORMAL, 30000, 200); break;
  }
  image.original_rows = 1000 + i;
  image.original_cols = 900 + i;
  return image;
}

std::string key_of(int i) { return "patient-" + std::to_string(i); }

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && a.isContinuous() && b.isContinuous() &&
         std::equal(a.datastart, a.dataend, b.datastart);
}

struct LogLines {
  std::vector<std::string> lines;
  rsna::RsnaImageCache::Log sink() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
  std::string all() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

// The file opened by HDF5 itself, as h5py would (the cache must be closed).
struct RawFile {
  explicit RawFile(const std::string& path, unsigned flags = H5F_ACC_RDONLY) {
    hdf5::silence_errors();
    file = Handle(H5Fopen(path.c_str(), flags, H5P_DEFAULT));
    REQUIRE(file.ok());
  }
  Handle dataset(const std::string& key) const {
    Handle d(H5Dopen2(file.get(), ("/images/" + key).c_str(), H5P_DEFAULT));
    REQUIRE(d.ok());
    return d;
  }
  cv::Mat read_with_h5dread(const std::string& key) const {
    Handle d = dataset(key);
    cv::Mat pixels(kSize, kSize, CV_16UC1);
    REQUIRE(H5Dread(d.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels.data) >= 0);
    return pixels;
  }
  std::vector<unsigned char> stored_chunk(const std::string& key) const {
    Handle d = dataset(key);
    const hsize_t origin[2] = {0, 0};
    hsize_t size = 0;
    REQUIRE(H5Dget_chunk_storage_size(d.get(), origin, &size) >= 0);
    std::vector<unsigned char> bytes(size);
    std::uint32_t mask = 0;
    REQUIRE(H5Dread_chunk(d.get(), H5P_DEFAULT, origin, &mask, bytes.data()) >= 0);
    CHECK(mask == 0);
    return bytes;
  }
  void replace_chunk(const std::string& key, const std::vector<unsigned char>& bytes) const {
    Handle d = dataset(key);
    const hsize_t origin[2] = {0, 0};
    REQUIRE(H5Dwrite_chunk(d.get(), H5P_DEFAULT, 0, origin, bytes.size(), bytes.data()) >= 0);
  }
  int filter_count(const std::string& key) const {
    Handle d = dataset(key);
    Handle props(H5Dget_create_plist(d.get()));
    return H5Pget_nfilters(props.get());
  }
  Handle file;
};

void write_int_attribute(hid_t object, const char* name, std::int64_t value) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  REQUIRE(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) >= 0);
}

// An entry as chestlab before the direct chunk path wrote it: H5Dwrite through the pipeline
// Fletcher-32, shuffle, deflate.
void add_h5dwrite_entry(const RawFile& raw, const std::string& key, const rsna::PreparedImage& image) {
  const hsize_t dims[2] = {kSize, kSize};
  Handle space(H5Screate_simple(2, dims, nullptr));
  Handle props(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(props.get(), 2, dims);
  H5Pset_fletcher32(props.get());
  H5Pset_shuffle(props.get());
  H5Pset_deflate(props.get(), 1);
  Handle d(H5Dcreate2(raw.file.get(), ("/images/" + key).c_str(), H5T_STD_U16LE, space.get(), H5P_DEFAULT,
                      props.get(), H5P_DEFAULT));
  REQUIRE(d.ok());
  REQUIRE(H5Dwrite(d.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, image.pixels.data) >= 0);
  write_int_attribute(d.get(), "original_rows", image.original_rows);
  write_int_attribute(d.get(), "original_cols", image.original_cols);
}

std::vector<unsigned char> zlib_stream(const std::vector<unsigned char>& bytes) {
  std::vector<unsigned char> out(compressBound(bytes.size()));
  uLongf size = out.size();
  REQUIRE(compress2(out.data(), &size, bytes.data(), bytes.size(), 1) == Z_OK);
  out.resize(size);
  return out;
}

}  // namespace

TEST_CASE("rsna cache: entries read by 4 threads at once equal a serial H5Dread", "[rsna_cache][rsna_cache_chunks]") {
  const fs::path dir = test::scratch_dir("rsna_cache_chunks_parallel");
  const std::string path = (dir / "cache.h5").string();
  constexpr int kEntries = 48;
  std::vector<rsna::PreparedImage> images;
  {
    rsna::RsnaImageCache cache(path, params64());
    for (int i = 0; i < kEntries; ++i) {
      images.push_back(test_image(i));
      cache.put(key_of(i), images.back());
    }
    CHECK(cache.stats().writes == kEntries);
  }
  // HDF5's own pipeline decodes what the cache wrote as raw chunks, to the pixels put.
  std::vector<cv::Mat> serial;
  {
    const RawFile raw(path);
    for (int i = 0; i < kEntries; ++i) {
      serial.push_back(raw.read_with_h5dread(key_of(i)));
      INFO("entry " << i);
      CHECK(same_bytes(serial.back(), images[static_cast<std::size_t>(i)].pixels));
      CHECK(raw.filter_count(key_of(i)) == 2);  // shuffle, deflate
    }
  }
  rsna::RsnaImageCache cache(path, params64());
  constexpr int kThreads = 4, kRounds = 3;
  std::atomic<int> wrong{0}, missing{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (int k = 0; k < kEntries; ++k) {
          const int i = (k * (t + 1) + round) % kEntries;  // each thread in its own order
          const auto hit = cache.get(key_of(i));
          if (!hit) {
            ++missing;
            continue;
          }
          const auto& want = images[static_cast<std::size_t>(i)];
          if (!same_bytes(hit->pixels, serial[static_cast<std::size_t>(i)]) ||
              hit->original_rows != want.original_rows || hit->original_cols != want.original_cols)
            ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(missing == 0);
  CHECK(wrong == 0);
  const auto stats = cache.stats();
  CHECK(stats.hits == kThreads * kRounds * kEntries);
  // Every hit went through the direct path, not the H5Dread fallback.
  CHECK(stats.direct_reads == stats.hits);
}

TEST_CASE("rsna cache: an entry of another pipeline (Fletcher-32, older files) is read by H5Dread",
          "[rsna_cache][rsna_cache_chunks]") {
  const fs::path dir = test::scratch_dir("rsna_cache_chunks_fletcher");
  const std::string path = (dir / "cache.h5").string();
  const rsna::PreparedImage old_entry = test_image(1), new_entry = test_image(0);
  {
    rsna::RsnaImageCache cache(path, params64());
    cache.put("new", new_entry);
  }
  {
    const RawFile raw(path, H5F_ACC_RDWR);
    add_h5dwrite_entry(raw, "old", old_entry);
    CHECK(raw.filter_count("old") == 3);
  }
  LogLines log;
  rsna::RsnaImageCache cache(path, params64(), log.sink());
  const auto old_hit = cache.get("old");
  REQUIRE(old_hit);
  CHECK(same_bytes(old_hit->pixels, old_entry.pixels));
  CHECK(old_hit->original_rows == old_entry.original_rows);
  CHECK(cache.stats().direct_reads == 0);
  const auto new_hit = cache.get("new");
  REQUIRE(new_hit);
  CHECK(same_bytes(new_hit->pixels, new_entry.pixels));
  CHECK(cache.stats().direct_reads == 1);
  CHECK(log.lines.empty());
}

TEST_CASE("rsna cache: a chunk that does not inflate to the image is dropped and made again",
          "[rsna_cache][rsna_cache_chunks]") {
  const fs::path dir = test::scratch_dir("rsna_cache_chunks_damaged");
  const std::string path = (dir / "cache.h5").string();
  const rsna::PreparedImage good = test_image(1), other = test_image(5);
  {
    rsna::RsnaImageCache cache(path, params64());
    cache.put("victim", good);
    cache.put("bystander", other);
  }
  std::vector<unsigned char> stored;
  {
    const RawFile raw(path);
    stored = raw.stored_chunk("victim");
  }
  REQUIRE(stored.size() > 100);

  std::map<std::string, std::vector<unsigned char>> damage;
  {
    std::vector<unsigned char> flipped = stored;
    for (std::size_t i = stored.size() / 2; i < stored.size() / 2 + 16; ++i) flipped[i] ^= 0x5A;
    damage["bytes flipped inside the stream"] = flipped;
  }
  {
    std::vector<unsigned char> adler = stored;
    adler.back() ^= 0x01;  // the deflate data intact, its Adler-32 trailer wrong
    damage["checksum wrong"] = adler;
  }
  damage["stream cut short"] = std::vector<unsigned char>(stored.begin(), stored.begin() + stored.size() / 2);
  {
    std::vector<unsigned char> longer = stored;
    longer.insert(longer.end(), 7, 0);
    damage["bytes after the stream"] = longer;
  }
  // Complete, valid zlib streams of the wrong length.
  damage["inflates to fewer bytes"] = zlib_stream(std::vector<unsigned char>(2 * kSize * kSize - 2, 7));
  damage["inflates to more bytes"] = zlib_stream(std::vector<unsigned char>(2 * kSize * kSize + 2, 7));
  // Larger than zlib can make of a kSize x kSize image: refused before allocating or inflating.
  damage["impossible size"] = std::vector<unsigned char>(4 * kSize * kSize, 0xAB);

  for (const auto& [what, bytes] : damage) {
    INFO(what);
    {
      const RawFile raw(path, H5F_ACC_RDWR);
      raw.replace_chunk("victim", bytes);
    }
    LogLines log;
    {
      rsna::RsnaImageCache cache(path, params64(), log.sink());
      REQUIRE(cache.entries() == 2);
      CHECK_FALSE(cache.get("victim"));
      CHECK(cache.entries() == 1);  // dropped from the file
      CHECK(log.all().find("entry victim is damaged") != std::string::npos);
      CHECK(cache.stats().hits == 0);
      // The rest of the cache is still trusted, and the entry is made again.
      const auto bystander = cache.get("bystander");
      REQUIRE(bystander);
      CHECK(same_bytes(bystander->pixels, other.pixels));
      bool made = false;
      const rsna::PreparedImage again = cache.get_or_make("victim", [&] {
        made = true;
        return good;
      });
      CHECK(made);
      CHECK(same_bytes(again.pixels, good.pixels));
    }
    rsna::RsnaImageCache reopened(path, params64());
    const auto hit = reopened.get("victim");
    REQUIRE(hit);
    CHECK(same_bytes(hit->pixels, good.pixels));
  }
}

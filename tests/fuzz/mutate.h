// Deterministic mutation of input files, shared by the fuzz tests (CTest, test_fuzz) and the
// campaign program (chestlab_fuzz). Header-only, LibTorch-free.
//
// A mutant is a copy of a seed input with 1..4 edits drawn from a PRNG seeded by
// (campaign seed, target, iteration): the same numbers give the same mutant on every machine
// (chestlab's portable Rng, no std::*_distribution). Edits: bit flips, interesting bytes,
// truncation, huge length fields (16/32/64-bit, both byte orders), zeroed runs, deleted,
// duplicated and inserted runs; for text formats also hostile tokens (huge, negative and
// non-finite numbers, quotes, separators, NUL, BOM, long fields) and line edits. Offsets are
// drawn half of the time near the seed's "hot spots" (element headers of a DICOM file,
// metadata signatures of an HDF5 file), where a flip changes structure rather than a pixel.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "chestlab/rng.h"

namespace chestlab::fuzz {

using Bytes = std::string;  // a file's content; std::string holds any byte, NUL included

struct Seed {
  std::string name;               // for reports: where the seed came from
  Bytes data;
  std::vector<std::size_t> hot;   // offsets where structure lives (may be empty)
  bool text = false;              // also apply the text edits
};

struct Mutant {
  Bytes data;
  std::string seed_name;
  std::string edits;  // what was done, e.g. "flip@1234.5, truncate@900"
};

// The mutation stream of one iteration of one target.
inline std::uint64_t mutant_seed(std::uint64_t campaign_seed, const std::string& target,
                                 std::uint64_t iteration) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the target's name
  for (unsigned char c : target) h = (h ^ c) * 0x100000001b3ull;
  return mix_seed({campaign_seed, h, iteration});
}

namespace detail {

inline std::size_t pick_offset(Rng& rng, const Seed& seed, std::size_t size) {
  if (size == 0) return 0;
  if (!seed.hot.empty() && rng.chance(0.5)) {
    const std::size_t base = seed.hot[rng.below(seed.hot.size())];
    const std::size_t at = base + rng.below(24);
    return std::min(at, size - 1);
  }
  return rng.below(size);
}

inline void put_integer(Bytes& data, std::size_t at, std::uint64_t value, int bytes, bool big_endian) {
  for (int i = 0; i < bytes && at + static_cast<std::size_t>(i) < data.size(); ++i) {
    const int shift = 8 * (big_endian ? bytes - 1 - i : i);
    data[at + static_cast<std::size_t>(i)] = static_cast<char>((value >> shift) & 0xFF);
  }
}

inline std::size_t run_length(Rng& rng, std::size_t limit) {
  // Mostly short runs, sometimes long ones.
  const std::size_t cap = rng.chance(0.8) ? 16 : 4096;
  return std::min<std::size_t>(limit, 1 + rng.below(cap));
}

const char* const kHostileTokens[] = {
    "\"", "'", ",", "\n", "\r\n", "\r", "=", "[", "]", "[[", "{", "}", "#", "\\", "\t", " ",
    "\xEF\xBB\xBF", "\xff\xfe", "\xc3", "\xe2\x80\xae", "\\u0000", "\\x", "\"\"\"", "'''",
    "-1", "0", "-0", "1e309", "-1e309", "nan", "inf", "-inf", "+inf", "1e-400", "0x7fffffff",
    "99999999999999999999999", "-9223372036854775809", "9223372036854775807", "4294967296",
    "2147483648", "65536", "1.7976931348623157e308", "NaN", "Infinity", "true", "false", ",,,,,",
    "1979-05-27T07:32:00Z", "a.b.c", "..", "/", "../../..", "%s%s%n",
};

inline std::string hostile_token(Rng& rng) {
  if (rng.chance(0.05)) return Bytes(1, '\0');
  if (rng.chance(0.05)) return std::string(1 + rng.below(70000), "aZ9,\" "[rng.below(6)]);  // a long field
  return kHostileTokens[rng.below(std::size(kHostileTokens))];
}

// Offsets of the lines' starts.
inline std::vector<std::size_t> line_starts(const Bytes& data) {
  std::vector<std::size_t> starts{0};
  for (std::size_t i = 0; i + 1 < data.size(); ++i)
    if (data[i] == '\n') starts.push_back(i + 1);
  return starts;
}

// One text edit; returns its description.
inline std::string text_edit(Rng& rng, Bytes& data) {
  const std::vector<std::size_t> starts = line_starts(data);
  const std::size_t line = rng.below(starts.size());
  const std::size_t begin = starts[line];
  const std::size_t end = line + 1 < starts.size() ? starts[line + 1] : data.size();
  switch (rng.below(5)) {
    case 0: {  // a token inserted anywhere
      const std::size_t at = data.empty() ? 0 : rng.below(data.size() + 1);
      const std::string token = hostile_token(rng);
      data.insert(at, token);
      return fmt::format("insert@{}({} bytes)", at, token.size());
    }
    case 1: {  // a number, word or value replaced by a token
      std::size_t at = begin;
      while (at < end && !std::isalnum(static_cast<unsigned char>(data[at])) && data[at] != '-') ++at;
      if (end > at) at += rng.below(end - at);
      std::size_t stop = at;
      while (stop < end && (std::isalnum(static_cast<unsigned char>(data[stop])) || data[stop] == '.' ||
                            data[stop] == '-' || data[stop] == '_'))
        ++stop;
      const std::string token = hostile_token(rng);
      data.replace(at, stop - at, token);
      return fmt::format("replace@{}+{}({} bytes)", at, stop - at, token.size());
    }
    case 2:  // a line deleted
      data.erase(begin, end - begin);
      return fmt::format("delete-line{}", line + 1);
    case 3: {  // a line repeated
      const std::string copy = data.substr(begin, end - begin);
      const std::size_t times = 1 + rng.below(rng.chance(0.9) ? 2 : 2000);
      std::string block;
      for (std::size_t i = 0; i < times; ++i) block += copy;
      data.insert(end, block);
      return fmt::format("repeat-line{}x{}", line + 1, times);
    }
    default: {  // two lines swapped
      const std::size_t other = rng.below(starts.size());
      const std::size_t b2 = starts[other];
      const std::size_t e2 = other + 1 < starts.size() ? starts[other + 1] : data.size();
      if (other == line) return "swap-none";
      std::string first = data.substr(begin, end - begin), second = data.substr(b2, e2 - b2);
      if (b2 > begin) {
        data.replace(b2, e2 - b2, first);
        data.replace(begin, end - begin, second);
      } else {
        data.replace(begin, end - begin, second);
        data.replace(b2, e2 - b2, first);
      }
      return fmt::format("swap-lines{},{}", line + 1, other + 1);
    }
  }
}

// One binary edit; returns its description. `allow_truncate` is false after a truncation.
inline std::string byte_edit(Rng& rng, const Seed& seed, Bytes& data, bool& truncated) {
  const std::size_t at = pick_offset(rng, seed, data.size());
  switch (rng.below(truncated ? 7 : 8)) {
    case 0: {
      const int bit = static_cast<int>(rng.below(8));
      if (!data.empty()) data[at] = static_cast<char>(data[at] ^ (1 << bit));
      return fmt::format("flip@{}.{}", at, bit);
    }
    case 1: {
      static const unsigned char kBytes[] = {0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x0A};
      const unsigned char b = rng.chance(0.3) ? static_cast<unsigned char>(rng.below(256))
                                              : kBytes[rng.below(std::size(kBytes))];
      if (!data.empty()) data[at] = static_cast<char>(b);
      return fmt::format("byte@{}={:02x}", at, b);
    }
    case 2: {  // a huge (or zero, or negative) length or count field
      static const std::uint64_t kValues[] = {0xFFFFFFFFull, 0x7FFFFFFFull, 0x80000000ull, 0xFFFFFFFEull,
                                             0xFFFFull,     0x8000ull,     0x7FFFull,     0ull,
                                             0xFFFFFFFFFFFFFFFFull,        0x7FFFFFFFFFFFFFFFull,
                                             0x0000000100000000ull,        0x10000ull};
      const std::uint64_t value = kValues[rng.below(std::size(kValues))];
      static const int kWidths[] = {2, 4, 8};
      const int width = kWidths[rng.below(3)];
      const bool big = rng.chance(0.25);
      put_integer(data, at, value, width, big);
      return fmt::format("length@{}={:#x}/{}{}", at, value, width, big ? "be" : "le");
    }
    case 3: {
      const std::size_t n = run_length(rng, data.size() - std::min(at, data.size()));
      std::fill_n(data.begin() + static_cast<std::ptrdiff_t>(at), n, '\0');
      return fmt::format("zero@{}+{}", at, n);
    }
    case 4: {
      const std::size_t n = run_length(rng, data.size() - std::min(at, data.size()));
      data.erase(at, n);
      return fmt::format("delete@{}+{}", at, n);
    }
    case 5: {
      const std::size_t n = run_length(rng, data.size() - std::min(at, data.size()));
      const std::size_t to = data.empty() ? 0 : rng.below(data.size());
      data.insert(to, data.substr(at, n));
      return fmt::format("copy@{}+{}->{}", at, n, to);
    }
    case 6: {
      const std::size_t n = 1 + rng.below(rng.chance(0.9) ? 8 : 512);
      std::string junk;
      for (std::size_t i = 0; i < n; ++i) junk += static_cast<char>(rng.below(256));
      data.insert(std::min(at, data.size()), junk);
      return fmt::format("insert@{}+{}", at, n);
    }
    default: {
      const std::size_t keep = rng.chance(0.5) ? at : rng.below(data.size() + 1);
      data.resize(keep);
      truncated = true;
      return fmt::format("truncate@{}", keep);
    }
  }
}

}  // namespace detail

// The mutant of `iteration`: a seed chosen by the stream, then 1..4 edits (text seeds get
// text edits and byte edits about equally).
inline Mutant mutate(const std::vector<Seed>& seeds, std::uint64_t campaign_seed, const std::string& target,
                     std::uint64_t iteration) {
  Rng rng(mutant_seed(campaign_seed, target, iteration));
  const Seed& seed = seeds[rng.below(seeds.size())];
  Mutant m{seed.data, seed.name, ""};
  const int edits = 1 + static_cast<int>(rng.below(rng.chance(0.7) ? 2 : 4));
  bool truncated = false;
  for (int i = 0; i < edits; ++i) {
    const std::string what = seed.text && rng.chance(0.5) ? detail::text_edit(rng, m.data)
                                                          : detail::byte_edit(rng, seed, m.data, truncated);
    m.edits += (m.edits.empty() ? "" : ", ") + what;
  }
  return m;
}

// Offsets of every occurrence of `signature` in `data`: structure for the hot-spot list.
inline std::vector<std::size_t> find_all(const Bytes& data, const std::string& signature) {
  std::vector<std::size_t> found;
  for (std::size_t at = data.find(signature); at != Bytes::npos; at = data.find(signature, at + 1))
    found.push_back(at);
  return found;
}

}  // namespace chestlab::fuzz

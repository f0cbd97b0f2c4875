#include "chestlab/hash.h"

#include <fmt/format.h>

#include <fstream>
#include <stdexcept>
#include <vector>

namespace chestlab {

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string to_hex(std::uint64_t value, int digits) {
  std::string s = fmt::format("{:016x}", value);
  return s.substr(16 - static_cast<std::size_t>(digits));
}

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " to hash it");
  std::uint64_t h = 14695981039346656037ull;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = fnv1a64(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())), h);
  }
  return to_hex(h);
}

}  // namespace chestlab

// Stable, dependency-free hashes for identifiers (config hash, run ids, plugin file digests).
// Not cryptographic: they name things, they do not protect them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chestlab {

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t seed = 14695981039346656037ull);
// 16 lowercase hex digits of fnv1a64 of the file's bytes; throws std::runtime_error naming the file.
std::string file_digest(const std::string& path);
std::string to_hex(std::uint64_t value, int digits = 16);

}  // namespace chestlab

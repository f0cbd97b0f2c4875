// The run files (*.h5) a command wrote under a folder, for the end-to-end tests. Header-only
// and apart from support.h, so that a test using it rebuilds alone.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <vector>

namespace chestlab::test {

// Every *.h5 below `dir` (none when `dir` does not exist), in directory order.
inline std::vector<std::filesystem::path> run_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  if (!std::filesystem::exists(dir)) return files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().extension() == ".h5") files.push_back(e.path());
  return files;
}

// The one run file below `dir`; the test fails unless there is exactly one.
inline std::filesystem::path only_run_file(const std::filesystem::path& dir) {
  auto files = run_files(dir);
  REQUIRE(files.size() == 1);
  return files.front();
}

}  // namespace chestlab::test

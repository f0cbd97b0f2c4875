// Helpers of the LibTorch tests (test_torch only: they need the host library).
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <vector>

#include "chestlab/host/registry.h"

namespace chestlab::test {

// Every plugin of the build, discovered once per test program.
inline const PluginRegistry& plugins() {
  static const auto reg = [] {
    auto r = std::make_unique<PluginRegistry>();
    r->discover();
    return r;
  }();
  return *reg;
}

// The one run file (.h5) under `dir`; fails the test when there is not exactly one.
inline std::filesystem::path only_run_file(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().extension() == ".h5") files.push_back(e.path());
  REQUIRE(files.size() == 1);
  return files.front();
}

}  // namespace chestlab::test

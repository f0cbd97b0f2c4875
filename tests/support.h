// Helpers shared by the tests: where the shared data and the built program are.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace chestlab::test {

// ../shared/data (or $CHESTLAB_SHARED_DATA); nullopt when absent.
std::optional<std::filesystem::path> shared_data();

// Path of the built `chestlab` program.
std::string chestlab_exe();
std::filesystem::path source_dir();
std::filesystem::path binary_dir();

// A fresh empty directory under the build tree, named after the test.
std::filesystem::path scratch_dir(const std::string& name);

// Runs a shell command, returns its exit status (not the raw wait status); output to `log`.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace chestlab::test

// Skips the current test with a visible message when the shared data is missing.
#define CHESTLAB_REQUIRE_SHARED_DATA(var)                                              \
  auto var##_opt = ::chestlab::test::shared_data();                                    \
  if (!var##_opt) {                                                                    \
    WARN("SKIPPED: ../shared/data not found (set CHESTLAB_SHARED_DATA to run this)");  \
    return;                                                                            \
  }                                                                                    \
  const std::filesystem::path var = *var##_opt

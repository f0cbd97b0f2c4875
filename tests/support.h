// Helpers shared by the tests: where the shared data and the built program are.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace chestlab::test {

// ../shared/data (or $CHESTLAB_SHARED_DATA); nullopt when absent.
std::optional<std::filesystem::path> shared_data();

// Path of the built `chestlab` program.
std::string chestlab_exe();
std::filesystem::path source_dir();
std::filesystem::path binary_dir();
// Folder of the deliberately broken test plugins (tests/plugins).
std::string test_plugin_dir();
// A Python interpreter that can import h5py, or "" when none can.
std::string python_with_h5py();

// A fresh empty directory under the build tree, named after the test.
std::filesystem::path scratch_dir(const std::string& name);

// Runs a shell command, returns its exit status (not the raw wait status); output to `log`.
int run_command(const std::string& command, std::string* output = nullptr);

// Starts a program in the background (stdout and stderr to `log_file`); returns its pid.
int spawn_process(const std::vector<std::string>& argv, const std::string& log_file);
// Waits for a spawned process; returns its exit status, or 128 + signal.
int wait_process(int pid);

// A shell-safe single-quoted word.
std::string shell_quote(const std::string& word);

}  // namespace chestlab::test

// Skips the current test with a visible message when the shared data is missing.
#define CHESTLAB_REQUIRE_SHARED_DATA(var)                                              \
  auto var##_opt = ::chestlab::test::shared_data();                                    \
  if (!var##_opt) {                                                                    \
    WARN("SKIPPED: ../shared/data not found (set CHESTLAB_SHARED_DATA to run this)");  \
    return;                                                                            \
  }                                                                                    \
  const std::filesystem::path var = *var##_opt

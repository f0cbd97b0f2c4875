#include "support.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace chestlab::test {

static std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::optional<fs::path> shared_data() {
  for (const char* var : {"CHESTLAB_SHARED_DATA", "CHESTLAB_TEST_SHARED_DATA"}) {
    const char* v = std::getenv(var);
    if (v && *v && fs::is_directory(v)) return fs::path(v);
  }
  return std::nullopt;
}

std::string chestlab_exe() { return env_or("CHESTLAB_EXE", "chestlab"); }
fs::path source_dir() { return env_or("CHESTLAB_TEST_SOURCE_DIR", "."); }
fs::path binary_dir() { return env_or("CHESTLAB_TEST_BINARY_DIR", "."); }

fs::path scratch_dir(const std::string& name) {
  fs::path dir = binary_dir() / "test_scratch" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

int run_command(const std::string& command, std::string* output) {
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  while (std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  int status = pclose(pipe);
  if (output) *output = out;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace chestlab::test

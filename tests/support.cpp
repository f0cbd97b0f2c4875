#include "support.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fs = std::filesystem;

namespace chestlab::test {

static std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::optional<fs::path> shared_data() {
  const std::string dir = env_or("CHESTLAB_SHARED_DATA", CHESTLAB_TEST_SHARED_DATA);
  if (fs::is_directory(dir)) return fs::path(dir);
  return std::nullopt;
}

std::string chestlab_exe() { return env_or("CHESTLAB_EXE", CHESTLAB_EXE); }
fs::path source_dir() { return env_or("CHESTLAB_TEST_SOURCE_DIR", CHESTLAB_TEST_SOURCE_DIR); }
fs::path binary_dir() { return env_or("CHESTLAB_TEST_BINARY_DIR", CHESTLAB_TEST_BINARY_DIR); }
std::string test_plugin_dir() { return env_or("CHESTLAB_TEST_PLUGIN_DIR", CHESTLAB_TEST_PLUGIN_DIR); }

std::string python_with_h5py() {
  // Debian's interpreter first: the python3 first on PATH may be another install without h5py.
  for (const char* python : {"/usr/bin/python3", "python3"})
    if (run_command(std::string(python) + " -c 'import h5py'") == 0) return python;
  return {};
}

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

int spawn_process(const std::vector<std::string>& argv, const std::string& log_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int wait_process(int pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace chestlab::test

#include "chestlab/engine/project_info.h"

#include <array>
#include <cstdio>
#include <filesystem>

namespace chestlab {

namespace {
std::string first_line_of(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {};
  std::array<char, 256> buf{};
  std::string out;
  if (std::fgets(buf.data(), buf.size(), pipe)) out = buf.data();
  while (std::fgets(buf.data(), buf.size(), pipe)) {}  // drain so pclose does not block the writer
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}
}  // namespace

std::string chestlab_version() { return CHESTLAB_VERSION; }

std::string project_git_commit() {
  const std::string dir = CHESTLAB_SOURCE_DIR;
  if (!std::filesystem::exists(std::filesystem::path(dir) / ".git")) return "unknown";
  const std::string git = "git -C '" + dir + "' ";
  std::string sha = first_line_of(git + "rev-parse HEAD 2>/dev/null");
  if (sha.size() < 7) return "unknown";
  // Tracked files only: build folders and results are not part of what the commit means.
  if (!first_line_of(git + "status --porcelain --untracked-files=no 2>/dev/null").empty()) sha += "-dirty";
  return sha;
}

}  // namespace chestlab

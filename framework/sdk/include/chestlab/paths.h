// Paths in an experiment file are relative to the file's folder: the one rule every dataset,
// command and the host apply, in one place.
#pragma once

#include <string>

namespace chestlab {

// `path` unchanged when it is empty or absolute, or when `base_dir` is empty; otherwise
// base_dir / path, lexically normalised ("a/./b/../c" -> "a/c").
std::string resolve_path(const std::string& path, const std::string& base_dir);

}  // namespace chestlab

// Error types the host maps to exit codes (see docs/architecture.md):
//   ConfigError -> 2, DataError -> 3, anything else -> 1.
#pragma once

#include <stdexcept>
#include <string>

namespace chestlab {

// The user's configuration or command line is wrong. `what()` is the full message,
// already naming file:line:column and key where known.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An input file (image, label table, cache) is missing, malformed or undecodable.
// `file` names it so that skip-on-error can record which sample was dropped and why.
struct DataError : std::runtime_error {
  DataError(std::string file_, const std::string& reason)
      : std::runtime_error(file_ + ": " + reason), file(std::move(file_)), reason_text(reason) {}
  std::string file;
  std::string reason_text;
};

// A plugin library cannot be loaded or is incompatible with this host.
struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace chestlab

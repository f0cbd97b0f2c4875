// Each subcommand lives in its own file and registers itself:
//
//   static chestlab::app::Command reg{"inspect", "Show what the DICOM reader sees", &run_inspect};
//
// `run` receives the arguments after the command name and returns the process exit code:
// 0 success, 2 usage or configuration error, 3 data error, 130 interrupted, 1 other failure.
#pragma once

#include <string>
#include <vector>

namespace chestlab::app {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitData = 3;
constexpr int kExitInterrupted = 130;

using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  Command(const char* name, const char* summary, CommandFn run);
  const char* name;
  const char* summary;
  CommandFn run;
};

const std::vector<const Command*>& commands();

}  // namespace chestlab::app

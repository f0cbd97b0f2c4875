// chestlab: dispatches to the subcommand named by the first argument.
#include <fmt/format.h>

#include <cstring>
#include <exception>
#include <iostream>

#include "chestlab/errors.h"
#include "command.h"

namespace chestlab::app {

static std::vector<const Command*>& registry() {
  static std::vector<const Command*> all;
  return all;
}

Command::Command(const char* n, const char* s, CommandFn r) : name(n), summary(s), run(r) {
  registry().push_back(this);
}

const std::vector<const Command*>& commands() { return registry(); }

static void print_usage() {
  std::cout << "usage: chestlab <command> [options]\n\ncommands:\n";
  for (const Command* c : commands()) std::cout << fmt::format("  {:<10} {}\n", c->name, c->summary);
  std::cout << "\n`chestlab <command> --help` describes a command's options.\n"
               "exit codes: 0 success, 2 usage or configuration error, 3 data error,\n"
               "            130 interrupted, 1 other failure\n";
}

}  // namespace chestlab::app

int main(int argc, char** argv) {
  using namespace chestlab::app;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "chestlab " << CHESTLAB_VERSION << "\n";
    return kExitOk;
  }
  for (const Command* c : commands()) {
    if (std::strcmp(c->name, argv[1]) != 0) continue;
    try {
      return c->run(std::vector<std::string>(argv + 2, argv + argc));
    } catch (const chestlab::ConfigError& e) {
      std::cerr << "error: " << e.what() << "\n";
      return kExitUsage;
    } catch (const chestlab::DataError& e) {
      std::cerr << "data error: " << e.what() << "\n";
      return kExitData;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return kExitFailure;
    } catch (...) {
      // Plugin calls are translated where they happen (host/plugin_guard.h); this is the
      // last net for anything else, so that no throw ends in std::terminate.
      std::cerr << "error: an unknown exception (not a std::exception) reached the top\n";
      return kExitFailure;
    }
  }
  std::cerr << "chestlab: unknown command '" << argv[1] << "' (see `chestlab --help`)\n";
  return kExitUsage;
}

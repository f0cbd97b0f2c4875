#include "cli.h"

#include <iostream>

#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {

std::optional<int> parse_command_line(const std::vector<std::string>& args, const char* usage,
                                      const po::options_description& options, const po::options_description& hidden,
                                      const po::positional_options_description& positional, po::variables_map& vm) {
  po::options_description all;
  all.add(options).add(hidden);
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n\n" << usage << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << usage << options;
    return kExitOk;
  }
  return std::nullopt;
}

}  // namespace chestlab::app

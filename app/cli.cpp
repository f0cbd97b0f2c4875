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

std::shared_ptr<PluginRegistry> discover_plugins(const po::variables_map& vm) {
  auto registry = std::make_shared<PluginRegistry>();
  registry->discover(vm.count("plugin-path") ? vm["plugin-path"].as<std::vector<std::string>>()
                                              : std::vector<std::string>{});
  for (const auto& problem : registry->problems()) std::cerr << "warning: plugin skipped: " << problem << "\n";
  return registry;
}

ExperimentConfig load_experiment_arg(const po::variables_map& vm, const PluginRegistry& registry) {
  const std::vector<std::string> overrides =
      vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
  return load_experiment(vm["experiment"].as<std::string>(), overrides, registry);
}

}  // namespace chestlab::app

// Command-line parsing the commands share: options, hidden positional arguments, --help.
#pragma once

#include <boost/program_options.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/host/registry.h"

namespace chestlab::app {

// Parses `args` into `vm`. `options` are shown in the help and must contain "help";
// `hidden` holds the positional arguments that `positional` maps. Returns an exit code when
// the command is done: kExitUsage after printing a parse error followed by `usage` and the
// options, kExitOk after printing them for --help; nullopt when the command goes on.
std::optional<int> parse_command_line(const std::vector<std::string>& args, const char* usage,
                                      const boost::program_options::options_description& options,
                                      const boost::program_options::options_description& hidden,
                                      const boost::program_options::positional_options_description& positional,
                                      boost::program_options::variables_map& vm);

// The plugins of the build and the install plus the folders of --plugin-path (if the command
// has that option); the libraries skipped are printed as warnings.
std::shared_ptr<PluginRegistry> discover_plugins(const boost::program_options::variables_map& vm);

// The experiment file of the positional "experiment" argument with the --set overrides.
ExperimentConfig load_experiment_arg(const boost::program_options::variables_map& vm, const PluginRegistry& registry);

}  // namespace chestlab::app

// Installs chestlab to a scratch prefix, builds tests/out_of_tree against it with
// find_package(chestlab), and loads the result.
#include <catch2/catch.hpp>

#include <filesystem>

#include "chestlab/host/registry.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

TEST_CASE("an out-of-tree plugin builds with find_package(chestlab) and loads", "[out_of_tree]") {
  const fs::path scratch = scratch_dir("out_of_tree");
  const fs::path prefix = scratch / "prefix", build = scratch / "build";
  std::string log;
  INFO(log);
  REQUIRE(run_command("cmake --install " + shell_quote(binary_dir().string()) + " --prefix " +
                          shell_quote(prefix.string()),
                      &log) == 0);
  const std::string configure = "cmake -S " + shell_quote((source_dir() / "tests" / "out_of_tree").string()) +
                                " -B " + shell_quote(build.string()) +
                                " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + shell_quote(prefix.string());
  {
    INFO(log);
    REQUIRE(run_command(configure, &log) == 0);
  }
  {
    INFO(log);
    REQUIRE(run_command("cmake --build " + shell_quote(build.string()), &log) == 0);
  }
  const fs::path plugin = build / "outside_plugin.so";
  REQUIRE(fs::exists(plugin));

  PluginRegistry registry;
  registry.load_file(plugin.string());
  const ComponentInfo* info = registry.find(Kind::Scheduler, "outside_halving");
  REQUIRE(info != nullptr);
  auto schedule = registry.make_scheduler("outside_halving", registry.params_for(Kind::Scheduler, "outside_halving"));
  ScheduleState s;
  s.base_lr = 1.0;
  s.epoch = 5;
  CHECK(schedule->lr(s) == Approx(0.25));

  // The installed program finds it through --plugin-path.
  std::string listing;
  REQUIRE(run_command(shell_quote((prefix / "bin" / "chestlab").string()) + " plugins --plugin-path " +
                          shell_quote(build.string()),
                      &listing) == 0);
  CHECK_THAT(listing, Catch::Contains("outside_halving"));
  CHECK_THAT(listing, Catch::Contains("resnet_seg"));  // installed plugins are found beside the installed host
}

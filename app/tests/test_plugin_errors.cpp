// An error raised inside plugin code reaches the user as a message and an exit code, never
// as a crash (it used to end in a segmentation fault once the plugin library was unloaded).
#include <catch2/catch.hpp>

#include "support.h"

using namespace chestlab::test;

TEST_CASE("an image size the model cannot take is an error, not a crash", "[plugin_errors]") {
  const std::string quickstart = (source_dir() / "experiments" / "quickstart.toml").string();
  std::string log;
  const int status = run_command(shell_quote(chestlab_exe()) + " validate " + shell_quote(quickstart) +
                                     " --set dataset.image_size=63",
                                 &log);
  INFO(log);
  CHECK(status != 0);
  CHECK(status < 128);  // not killed by a signal (139 = SIGSEGV)
  CHECK_THAT(log, Catch::Contains("error"));
}

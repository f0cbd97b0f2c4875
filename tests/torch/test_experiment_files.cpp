// Every experiment file shipped in experiments/ passes the configuration check against the
// plugins of the build, so a renamed parameter or plugin cannot leave a recipe broken
// unnoticed; a file with a [sweep] table also expands (every point checked) with --dry-run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "chestlab/engine/config.h"
#include "chestlab/host/registry.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

std::vector<fs::path> experiment_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(source_dir() / "experiments"))
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

bool has_sweep_table(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("[sweep", 0) == 0) return true;
  return false;
}

}  // namespace

TEST_CASE("every shipped experiment file passes the configuration check", "[experiments]") {
  const auto files = experiment_files();
  // The issues name these recipes; losing one is a regression too.
  for (const char* expected : {"quickstart.toml", "sweep_example.toml", "rsna_resnet_seg.toml",
                               "rsna_unet.toml", "rsna_retinanet_kfold.toml", "lung_ct_unet.toml"})
    CHECK(std::any_of(files.begin(), files.end(), [&](const fs::path& f) { return f.filename() == expected; }));

  PluginRegistry registry;
  registry.discover({});
  for (const auto& file : files) {
    INFO(file.string());
    CHECK_NOTHROW(load_experiment(file.string(), {}, registry));
  }
}

TEST_CASE("every shipped sweep expands with every point checked", "[experiments][sweep]") {
  int sweeps = 0;
  for (const auto& file : experiment_files()) {
    if (!has_sweep_table(file)) continue;
    ++sweeps;
    std::string log;
    const int code = run_command(shell_quote(chestlab_exe()) + " sweep " + shell_quote(file.string()) +
                                     " --dry-run --output " + shell_quote(scratch_dir("experiment_files_dry").string()),
                                 &log);
    INFO(file.string() << "\n" << log);
    CHECK(code == 0);
    CHECK(log.find("pending") != std::string::npos);
  }
  CHECK(sweeps >= 1);
}

// `chestlab rerun`: a tiny run trained again matches bit for bit (exit 0); a run file whose
// recorded best weights differ by one float step is reported with that field (exit 1).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "chestlab/engine/runfile.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

TEST_CASE("rerun reproduces a tiny run and names the first difference of a changed one", "[rerun][e2e]") {
  const fs::path dir = scratch_dir("rerun");
  const std::string exe = shell_quote(chestlab_exe());
  const std::string tiny = (source_dir() / "tests" / "data" / "tiny.toml").string();
  std::string log;
  REQUIRE(run_command(exe + " run " + shell_quote(tiny) + " --folds 0 --quiet --output " + shell_quote(dir.string()),
                      &log) == 0);
  fs::path original;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ".h5") original = e.path();
  REQUIRE_FALSE(original.empty());

  REQUIRE(run_command(exe + " rerun " + shell_quote(original.string()) + " --quiet", &log) == 0);
  INFO(log);
  CHECK(log.find("match: 1 fold(s), 2 epoch(s)") != std::string::npos);
  std::size_t runs = 0;
  for (const auto& e : fs::directory_iterator(original.parent_path())) runs += e.path().extension() == ".h5";
  CHECK(runs == 2);  // a new run file beside the original, which is left alone

  // One float step in one recorded weight: bit-identical means exactly that.
  const fs::path changed_dir = dir / "changed";
  fs::create_directories(changed_dir);
  const fs::path changed = changed_dir / original.filename();
  fs::copy_file(original, changed);
  {
    RunFile file = RunFile::open(changed.string());
    const RunInfo info = file.read(LoadWeights::Yes);
    FoldInfo fold = info.folds.at(0);
    REQUIRE_FALSE(fold.weights.empty());
    float& w = fold.weights[0].values.at(3);
    w = std::nextafter(w, 1e9f);
    file.transaction([&](RunWriter& writer) { writer.set_fold_best(0, fold.best_epoch, fold.best_value, fold.weights); });
  }
  CHECK(run_command(exe + " rerun " + shell_quote(changed.string()) + " --quiet", &log) == 1);
  CHECK(log.find("MISMATCH") != std::string::npos);
  CHECK(log.find("fold 0 weights " + read_run(changed.string(), LoadWeights::No).folds[0].weights[0].name + "[3]") !=
        std::string::npos);
}

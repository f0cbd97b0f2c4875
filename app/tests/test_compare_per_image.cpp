// `chestlab compare --per-image` through the program, on run files written through the run
// file API: the summary of each run, the paired comparison, the three formats, and exit 2
// with a message naming the run and metric when per-image values are missing.
#include <catch2/catch.hpp>

#include <filesystem>

#include "chestlab/engine/runfile.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;
using Catch::Matchers::Contains;

namespace {

int compare(const std::string& args, std::string* out) {
  return run_command(shell_quote(chestlab_exe()) + " compare " + args, out);
}

// stdout only (stderr dropped): what a pipe into a CSV reader gets.
int compare_stdout(const std::string& args, std::string* out) {
  return run_command("{ " + shell_quote(chestlab_exe()) + " compare " + args + " 2>/dev/null; }", out);
}

// One finished fold of images i1..i4 with `values` of dice (per image when `per_image`).
fs::path make_run(const fs::path& path, const std::vector<double>& values, bool per_image) {
  RunMeta meta;
  meta.experiment = "cli";
  meta.run_id = path.stem().string();
  meta.monitor = "dice";
  RunFile f = RunFile::create(path.string(), meta, "", Environment{});
  f.transaction([&](RunWriter& w) {
    const std::vector<std::string> ids{"i1", "i2", "i3", "i4"};
    w.begin_fold(0, {"dice"}, {"t"}, ids);
    double mean = 0;
    for (double v : values) mean += v / 4;
    HistoryRow row;
    row.epoch = 0;
    row.metrics = {mean};
    w.append_epoch(0, row);
    w.set_fold_best(0, 0, mean, {});
    if (per_image) w.set_fold_per_image(0, 0, PerImageScores{ids, {"dice"}, {values}});
    w.set_fold_status(0, FoldStatus::Complete);
    w.write_summary();
    w.set_status(RunStatus::Complete);
  });
  return path;
}

}  // namespace

TEST_CASE("compare --per-image summarises runs and pairs two image by image", "[compare][per_image][cli]") {
  const fs::path dir = scratch_dir("cli_compare_per_image");
  const std::string a = shell_quote(make_run(dir / "ra.h5", {1.0, 0.5, 0.25, 0.0}, true).string());
  const std::string b = shell_quote(make_run(dir / "rb.h5", {1.0, 0.25, 0.5, 0.5}, true).string());
  const std::string old = shell_quote(make_run(dir / "rold.h5", {0.5, 0.5, 0.5, 0.5}, false).string());
  std::string out;

  REQUIRE(compare(a + " --per-image --worst 2", &out) == 0);
  INFO(out);
  CHECK_THAT(out, Contains("per-image values of cli/ra"));
  CHECK_THAT(out, Contains("validation, folds 0"));
  CHECK_THAT(out, Contains("worst 2 of dice (validation; higher is better)"));
  CHECK_THAT(out, Contains("i4"));

  REQUIRE(compare_stdout(a + " " + b + " --per-image --format csv", &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("run,metric,part,stat,fold,id,value\n"));
  CHECK_THAT(out, Contains("cli/ra,dice,validation,mean,,,0.4375\n"));
  CHECK_THAT(out, Contains("cli/rb,dice,validation,worst,0,i2,0.2500\n"));

  REQUIRE(compare(a + " --per-image --format markdown", &out) == 0);
  CHECK_THAT(out, Contains("### per-image values of cli/ra"));

  // Paired: i1 tied, i2 +0.25, i3 -0.25, i4 -0.5.
  REQUIRE(compare(a + " " + b + " --per-image --paired ra rb", &out) == 0);
  CHECK_THAT(out, Contains("per-image paired comparison of dice: A = cli/ra, B = cli/rb"));
  CHECK_THAT(out, Contains("Wilcoxon signed-rank"));
  CHECK(out.find("paired t-test") == std::string::npos);  // instead of the fold-level comparison
  REQUIRE(compare_stdout(a + " " + b + " --per-image --paired ra rb --format csv", &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("metric,part,stat,value\n"));
  CHECK_THAT(out, Contains("dice,validation,a_better,1\n"));
  CHECK_THAT(out, Contains("dice,validation,b_better,2\n"));
  CHECK_THAT(out, Contains("dice,validation,tied,1\n"));

  SECTION("runs and metrics without per-image values are named") {
    // A run without them beside one with them: a note, the other's summary, exit 0.
    REQUIRE(compare(a + " " + old + " --per-image", &out) == 0);
    CHECK_THAT(out, Contains("note: run cli/rold has no per-image values"));
    CHECK_THAT(out, Contains("per-image values of cli/ra"));
    // Only runs without them: exit 2.
    CHECK(compare(old + " --per-image", &out) == 2);
    CHECK_THAT(out, Contains("error: run cli/rold has no per-image values"));
    CHECK(compare(a + " --per-image --metric mean_iou", &out) == 2);
    CHECK_THAT(out, Contains("run cli/ra has no per-image values of 'mean_iou'; per-image values in cli/ra: dice"));
    CHECK(compare(a + " " + old + " --per-image --paired ra rold", &out) == 2);
    CHECK_THAT(out, Contains("no metric with per-image values in common"));
    CHECK(compare(a + " " + old + " --per-image --paired ra rold --metric dice", &out) == 2);
    CHECK_THAT(out, Contains("run cli/rold has no per-image values of 'dice'"));
  }
  SECTION("usage errors exit 2") {
    CHECK(compare(a + " --worst 3", &out) == 2);
    CHECK_THAT(out, Contains("--worst goes with --per-image"));
    CHECK(compare(a + " --per-image --worst -1", &out) == 2);
    CHECK(compare(a + " --per-image --sort dice", &out) == 2);
    CHECK(compare(a + " " + b + " --per-image --paired ra", &out) == 2);
  }
}

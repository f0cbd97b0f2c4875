// [cv] mode = "holdout" end to end: the split in file order and shuffled with the seed, the
// test part evaluated once with the best weights into /test, and `chestlab compare` showing it.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "chestlab/host/experiment.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/trainer.h"
#include "chestlab/host/weights.h"
#include "chestlab/engine/runfile.h"
#include "support.h"
#include "torch_helpers.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

// 20 synthetic images, 3 epochs: the best epoch is chosen among several.
const char* kHoldoutToml = R"(
[experiment]
name = "holdout"
seed = 11

[dataset]
plugin = "synthetic_cxr"
count = 20
image_size = 32
positive_fraction = 0.7

[model]
plugin = "resnet_seg"
channels = 4
depth = 2
blocks = 1

[loss]
plugin = "bce_jaccard"

[optimizer]
lr = 0.003

[[metrics]]
plugin = "mean_iou"
monitor = true

[[metrics]]
plugin = "pixel_accuracy"

[train]
epochs = 3
batch_size = 8
workers = 1
threads = 2

[cv]
mode = "holdout"
holdout = [0.6, 0.2, 0.2]
)";

fs::path write_toml(const fs::path& dir) {
  const fs::path path = dir / "holdout.toml";
  std::ofstream(path) << kHoldoutToml;
  return path;
}

fs::path run_once(const fs::path& toml, const fs::path& out, const std::string& sets) {
  std::string log;
  const int code = run_command(shell_quote(chestlab_exe()) + " run " + shell_quote(toml.string()) + " --output " +
                                   shell_quote(out.string()) + " --quiet " + sets,
                               &log);
  INFO(log);
  REQUIRE(code == 0);
  return only_run_file(out);
}

std::vector<std::string> ids(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("synth-" + std::to_string(i));
  return out;
}

double test_value(const RunInfo& run, const std::string& metric) {
  for (const auto& t : run.test)
    if (t.metric == metric) return t.value;
  FAIL("no test value for " << metric);
  return 0;
}

}  // namespace

TEST_CASE("holdout in file order: 60/20/20 slices and /test from the best weights", "[holdout][e2e]") {
  const fs::path dir = scratch_dir("holdout_file");
  const fs::path toml = write_toml(dir);
  const fs::path file = run_once(toml, dir / "out", "");
  const RunInfo run = read_run(file.string(), LoadWeights::Yes);
  CHECK(run.status == RunStatus::Complete);
  REQUIRE(run.folds.size() == 1);
  const FoldInfo& fold = run.folds[0];
  CHECK(fold.train_ids == ids(0, 12));  // file order: the first 60 %
  CHECK(fold.val_ids == ids(12, 16));   // the next 20 %; the test part is synth-16..19
  REQUIRE(run.test.size() == 3);
  CHECK(run.test[0].metric == "mean_iou");
  CHECK(run.test[1].metric == "pixel_accuracy");
  CHECK(run.test[2].metric == "loss");

  // The same numbers, recomputed here: the best epoch's weights on samples 16..19.
  auto registry = std::make_shared<PluginRegistry>();
  registry->discover();
  torch::set_num_threads(2);
  ExperimentConfig config = load_experiment(toml.string(), {}, *registry);
  Experiment experiment(config, registry);
  const FoldPlan& plan = experiment.plans().at(0);
  CHECK(plan.test == std::vector<std::size_t>{16, 17, 18, 19});
  FoldTrainer trainer(experiment, 0, torch::kCPU);
  load_best_weights(trainer.model(), fold);
  const HistoryRow again = trainer.evaluate(plan.test, fold.best_epoch);
  CHECK(again.metrics[0] == Approx(test_value(run, "mean_iou")).epsilon(1e-5));
  CHECK(again.metrics[1] == Approx(test_value(run, "pixel_accuracy")).epsilon(1e-5));
  CHECK(again.val_loss == Approx(test_value(run, "loss")).epsilon(1e-5));
  // And the best epoch's validation value is what the history says it was.
  const HistoryRow val = trainer.evaluate(plan.val, fold.best_epoch);
  CHECK(val.metrics[0] == Approx(fold.history.at(static_cast<std::size_t>(fold.best_epoch)).metrics[0]).epsilon(1e-5));

  // `chestlab compare` shows the test value beside the (single) fold.
  std::string table, csv;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " compare " + shell_quote(file.string()) + " --metric mean_iou",
                      &table) == 0);
  CHECK_THAT(table, Catch::Contains("test") && Catch::Contains(fmt::format("{:.4f}", test_value(run, "mean_iou"))));
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " compare " + shell_quote(file.string()) +
                          " --metric pixel_accuracy --format csv",
                      &csv) == 0);
  CHECK_THAT(csv, Catch::Contains(",test\n") &&
                      Catch::Contains(fmt::format("{}", test_value(run, "pixel_accuracy")).substr(0, 6)));
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? std::nan("") : sum / static_cast<double>(values.size());
}

TEST_CASE("per-image values: the best epoch's validation and the test part, image by image", "[holdout][per_image]") {
  const fs::path dir = scratch_dir("holdout_per_image");
  const RunInfo run = read_run(run_once(write_toml(dir), dir / "out", "").string(), LoadWeights::No);
  REQUIRE(run.folds.size() == 1);
  const FoldInfo& fold = run.folds[0];
  // mean_iou declares per-image values; pixel_accuracy (pooled over pixels) does not.
  const PerImageScores& val = fold.per_image;
  CHECK(val.metrics == std::vector<std::string>{"mean_iou"});
  CHECK(val.ids == fold.val_ids);  // in evaluation order: the split's
  CHECK(fold.per_image_epoch == fold.best_epoch);
  // Each value is the image scored alone, so their mean is the metric of the best epoch.
  const double best_iou = fold.history.at(static_cast<std::size_t>(fold.best_epoch)).metrics.at(0);
  CHECK(mean_of(*val.column("mean_iou")) == Approx(best_iou).epsilon(1e-12));
  const PerImageScores& test = run.test_per_image;
  CHECK(test.ids == ids(16, 20));
  REQUIRE(test.column("mean_iou") != nullptr);
  CHECK(mean_of(*test.column("mean_iou")) == Approx(test_value(run, "mean_iou")).epsilon(1e-12));
  CHECK(test.column("pixel_accuracy") == nullptr);
  // The values differ between images (a constant column would mean the slicing is wrong).
  const auto [lo, hi] = std::minmax_element(test.column("mean_iou")->begin(), test.column("mean_iou")->end());
  CHECK(*lo < *hi);
}

TEST_CASE("holdout shuffled with the seed: reproducible, and another seed splits differently", "[holdout][e2e]") {
  const fs::path dir = scratch_dir("holdout_random");
  const fs::path toml = write_toml(dir);
  // One epoch is enough to record the split.
  const std::string random = "--set cv.holdout_order=random --set train.epochs=1";
  const RunInfo a = read_run(run_once(toml, dir / "a", random).string());
  const RunInfo b = read_run(run_once(toml, dir / "b", random).string());
  const RunInfo c = read_run(run_once(toml, dir / "c", random + " --set experiment.seed=12").string());
  REQUIRE(a.folds.size() == 1);
  CHECK(a.folds[0].train_ids.size() == 12);
  CHECK(a.folds[0].val_ids.size() == 4);
  CHECK(a.folds[0].train_ids != ids(0, 12));  // not the file order
  CHECK(a.folds[0].train_ids == b.folds[0].train_ids);
  CHECK(a.folds[0].val_ids == b.folds[0].val_ids);
  CHECK(a.folds[0].train_ids != c.folds[0].train_ids);
  CHECK(a.test.size() == 3);
  CHECK(test_value(a, "mean_iou") == test_value(b, "mean_iou"));
}

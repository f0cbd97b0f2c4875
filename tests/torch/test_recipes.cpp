// The recipe files (lung_ct_unet, lung_ct_unet_bn, rsna_unet) validate, and their small
// variants run end to end on the shared data (skipped where it is absent).
#include <catch2/catch.hpp>

#include <filesystem>

#include "chestlab/engine/runfile.h"
#include "support.h"
#include "torch_helpers.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

std::string experiment(const std::string& name) {
  return shell_quote((source_dir() / "experiments" / (name + ".toml")).string());
}

RunInfo run_and_read(const std::string& args, const fs::path& out) {
  std::string log;
  const int code = run_command(shell_quote(chestlab_exe()) + " run " + args + " --output " +
                                   shell_quote(out.string()) + " --quiet",
                               &log);
  INFO(log);
  REQUIRE(code == 0);
  return read_run(only_run_file(out).string(), LoadWeights::No);
}

}  // namespace

TEST_CASE("lung_ct_unet: the notebook recipe validates and its small variant runs", "[recipes][e2e]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const std::string subset = " --set dataset.images=" + shell_quote((data / "lung-ct" / "2d_images").string()) +
                             " --set dataset.masks=" + shell_quote((data / "lung-ct" / "2d_masks").string());
  std::string log;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " validate " + experiment("lung_ct_unet") + subset, &log) == 0);
  CHECK_THAT(log, Catch::Contains("38 samples") && Catch::Contains("128x128"));

  const RunInfo run = run_and_read(experiment("lung_ct_unet_small") + subset, scratch_dir("recipe_lung_ct"));
  CHECK(run.status == RunStatus::Complete);
  REQUIRE(run.folds.size() == 1);
  CHECK(run.folds[0].train_ids.size() == 12);  // 20 slices, 60/20/20 in file order
  CHECK(run.folds[0].train_ids.front() == "ID_0002_Z_0162");
  CHECK(run.folds[0].val_ids.size() == 4);
  REQUIRE(run.test.size() == 3);
  CHECK(run.test[0].metric == "pixel_accuracy");
  CHECK(run.test[1].metric == "mean_iou");
  for (const auto& t : run.test) {
    CHECK(t.value >= 0.0);
    if (t.metric != "loss") CHECK(t.value <= 1.0);
  }
}

TEST_CASE("lung_ct_unet_bn: chestlab's lung recipe validates and its small variant runs", "[recipes][e2e]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const std::string subset = " --set dataset.images=" + shell_quote((data / "lung-ct" / "2d_images").string()) +
                             " --set dataset.masks=" + shell_quote((data / "lung-ct" / "2d_masks").string());
  std::string log;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " validate " + experiment("lung_ct_unet_bn") + subset, &log) == 0);
  CHECK_THAT(log, Catch::Contains("38 samples") && Catch::Contains("128x128"));

  const RunInfo run = run_and_read(experiment("lung_ct_unet_bn_small") + subset, scratch_dir("recipe_lung_ct_bn"));
  CHECK(run.status == RunStatus::Complete);
  REQUIRE(run.folds.size() == 1);
  const FoldInfo& fold = run.folds[0];
  CHECK(fold.train_ids.size() == 12);  // the notebook's split: 20 slices, 60/20/20 in file order
  CHECK(fold.val_ids.size() == 4);
  CHECK(fold.metric_names == std::vector<std::string>{"mean_iou", "mean_iou_t10", "dice", "pixel_accuracy"});
  CHECK(run.config_toml.find("adamw") != std::string::npos);
  // Per-image values of the test slices for the three per-image metrics; at the same threshold
  // each slice's Dice is 2 IoU / (1 + IoU).
  const PerImageScores& test = run.test_per_image;
  CHECK(test.metrics == std::vector<std::string>{"mean_iou", "mean_iou_t10", "dice"});
  REQUIRE(test.ids.size() == 4);
  for (std::size_t i = 0; i < test.ids.size(); ++i) {
    const double iou = test.column("mean_iou")->at(i);
    CHECK(test.column("dice")->at(i) == Approx(2 * iou / (1 + iou)).margin(1e-12));
  }
  CHECK(fold.per_image.ids == fold.val_ids);
}

TEST_CASE("rsna_unet: the small variant runs on a synthetic RSNA corpus", "[recipes][e2e]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path dir = scratch_dir("recipe_rsna_unet");
  const fs::path corpus = dir / "corpus";
  std::string log;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " synth rsna --labels " +
                          shell_quote((data / "rsna" / "stage_2_train_labels.csv").string()) + " --class-info " +
                          shell_quote((data / "rsna" / "stage_2_detailed_class_info.csv").string()) +
                          " --limit 40 --out " + shell_quote(corpus.string()),
                      &log) == 0);
  const std::string sets = " --set dataset.images=" + shell_quote(corpus.string()) + " --set dataset.labels=" +
                           shell_quote((corpus / "stage_2_train_labels.csv").string()) +
                           " --set dataset.class_info=" +
                           shell_quote((corpus / "stage_2_detailed_class_info.csv").string());
  const RunInfo run = run_and_read(experiment("rsna_unet_small") + sets, dir / "results");
  CHECK(run.status == RunStatus::Complete);
  REQUIRE(run.folds.size() == 2);
  CHECK(run.folds[0].metric_names == std::vector<std::string>{"rsna_map", "mean_iou"});
  CHECK(run.config_toml.find("residual = true") != std::string::npos);
  // The full recipe (its residual UNet at 320 px) on the same corpus: validate decodes the
  // data and runs one forward pass.
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " validate " + experiment("rsna_unet") + sets +
                          " --set dataset.image_size=320",
                      &log) == 0);
  CHECK_THAT(log, Catch::Contains("320x320"));
}

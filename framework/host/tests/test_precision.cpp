// train.precision (bf16 autocast trained on the CPU, fp16 refused there) and the losses read
// from the device only when someone needs them: the non-finite check then still names the
// first bad batch, whoever reads. The CUDA paths (fp16 and its gradient scaler) need a GPU
// and are not run here.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "chestlab/errors.h"
#include "chestlab/host/experiment.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/trainer.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

std::size_t files_under(const fs::path& dir) {
  std::size_t n = 0;
  if (fs::exists(dir))
    for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

// The fold that trains on sample `id`.
int fold_training_on(const Experiment& experiment, const std::string& id) {
  for (const FoldPlan& plan : experiment.plans())
    for (std::size_t i : plan.train)
      if (experiment.samples()[i].id == id) return plan.fold;
  FAIL("no fold trains on " << id);
  return -1;
}

// 24 synthetic images in 2 folds, 2 training batches per epoch: a handful of steps in seconds.
const char* kToml = R"(
[experiment]
name = "precision"
seed = 5

[dataset]
plugin = "synthetic_cxr"
count = 24
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

[train]
epochs = 4
batch_size = 6
workers = 1
threads = 2
device = "cpu"

[cv]
folds = 2
)";

std::shared_ptr<PluginRegistry> registry_with(const std::vector<std::string>& extra_dirs = {}) {
  auto registry = std::make_shared<PluginRegistry>();
  registry->discover(extra_dirs);
  return registry;
}

ExperimentConfig config_with(const PluginRegistry& registry, const std::vector<std::string>& overrides) {
  return parse_experiment(kToml, "precision.toml", source_dir().string(), overrides, registry);
}

// Keeps each epoch's row; reads the running loss after every batch when `read_every_batch`.
struct Recorder : FoldObserver {
  bool read_every_batch = false;
  std::vector<HistoryRow> rows;
  std::vector<double> batch_means;  // the running mean after each batch read
  void on_epoch_end(int, const HistoryRow& row, const TrainingThroughput&, bool, const Model&,
                    const ResumeBlob&) override {
    rows.push_back(row);
  }
  void on_batch_end(int, std::int64_t, std::size_t, std::size_t, const std::function<double()>& mean_loss,
                    double) override {
    if (read_every_batch) batch_means.push_back(mean_loss());
  }
};

std::vector<double> train_losses(const std::vector<HistoryRow>& rows) {
  std::vector<double> out;
  for (const auto& r : rows) out.push_back(r.train_loss);
  return out;
}

}  // namespace

TEST_CASE("precision bf16 trains on the CPU: finite, falling, and other numbers than fp32", "[precision][train]") {
  torch::set_num_threads(2);
  const auto registry = registry_with();
  const ExperimentConfig fp32_config = config_with(*registry, {});
  const ExperimentConfig bf16_config = config_with(*registry, {"train.precision=\"bf16\""});
  Experiment fp32_experiment(fp32_config, registry), bf16_experiment(bf16_config, registry);

  Recorder fp32, bf16;
  FoldTrainer fp32_trainer(fp32_experiment, 0, torch::kCPU);
  FoldTrainer bf16_trainer(bf16_experiment, 0, torch::kCPU);
  REQUIRE(fp32_trainer.run(fp32).status == FoldStatus::Complete);
  REQUIRE(bf16_trainer.run(bf16).status == FoldStatus::Complete);

  const std::vector<double> loss = train_losses(bf16.rows);
  REQUIRE(loss.size() == 4);
  for (double v : loss) CHECK(std::isfinite(v));
  CHECK(loss.back() < loss.front());
  for (const auto& r : bf16.rows) CHECK(std::isfinite(r.val_loss));
  // Autocast did compute in bf16: the same seeds and samples give other numbers.
  CHECK(loss != train_losses(fp32.rows));
  // The weights themselves stay fp32.
  for (const auto& p : bf16_trainer.model().parameters()) CHECK(p.scalar_type() == torch::kFloat32);
}

TEST_CASE("the running loss read every batch is the epoch's mean, as without readers", "[precision][train]") {
  torch::set_num_threads(2);
  const auto registry = registry_with();
  const ExperimentConfig config = config_with(*registry, {"train.epochs=2"});
  Experiment experiment(config, registry);
  Recorder reading, quiet;
  reading.read_every_batch = true;
  REQUIRE(FoldTrainer(experiment, 0, torch::kCPU).run(reading).status == FoldStatus::Complete);
  REQUIRE(FoldTrainer(experiment, 0, torch::kCPU).run(quiet).status == FoldStatus::Complete);
  // Reading changes nothing, to the bit; the last read of an epoch is its train_loss.
  CHECK(train_losses(reading.rows) == train_losses(quiet.rows));
  REQUIRE(reading.batch_means.size() == 4);  // 12 training samples, batches of 6, 2 epochs
  CHECK(reading.batch_means[1] == reading.rows[0].train_loss);
  CHECK(reading.batch_means[3] == reading.rows[1].train_loss);
}

TEST_CASE("precision fp16 on the CPU is a configuration error naming the device", "[precision][config]") {
  const auto registry = registry_with();
  const ExperimentConfig config = config_with(*registry, {"train.precision=\"fp16\""});
  Experiment experiment(config, registry);
  try {
    FoldTrainer trainer(experiment, 0, torch::kCPU);
    FAIL("fp16 on the CPU was accepted");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("fp16") && Catch::Contains("cpu") && Catch::Contains("bf16"));
  }

  // The program: exit 2, the device named, and no run file begun.
  const fs::path dir = scratch_dir("precision_fp16_cpu");
  const fs::path toml = dir / "precision.toml";
  {
    std::ofstream out(toml);
    out << kToml;
  }
  std::string log;
  const int code = run_command(shell_quote(chestlab_exe()) + " run " + shell_quote(toml.string()) + " --set " +
                                   shell_quote("train.precision=\"fp16\"") + " --quiet --output " +
                                   shell_quote((dir / "out").string()),
                               &log);
  INFO(log);
  CHECK(code == 2);
  CHECK_THAT(log, Catch::Contains("train.precision") && Catch::Contains("fp16") && Catch::Contains("cpu"));
  CHECK(files_under(dir / "out") == 0);
}

TEST_CASE("a non-finite loss names its batch whether the loss is read every batch or at the epoch's end",
          "[precision][nan]") {
  torch::set_num_threads(2);
  // A loss that is NaN for the batch holding synth-0 (and, the weights then NaN, every later one).
  const auto registry = registry_with({(fs::path(test_plugin_dir()) / "nan_loss").string()});
  // Batches of 2: 6 per epoch, synth-0's not the last, so that NaN batches follow it.
  const ExperimentConfig config =
      config_with(*registry, {"loss.plugin=\"nan_when_synth0\"", "train.epochs=1", "train.batch_size=2"});
  Experiment experiment(config, registry);
  const int fold = fold_training_on(experiment, "synth-0");
  Recorder reading, quiet;
  reading.read_every_batch = true;
  const FoldResult read = FoldTrainer(experiment, fold, torch::kCPU).run(reading);
  const FoldResult unread = FoldTrainer(experiment, fold, torch::kCPU).run(quiet);
  REQUIRE(read.status == FoldStatus::Failed);
  REQUIRE(unread.status == FoldStatus::Failed);
  // Read every batch, the failure comes at the first bad batch's read: the batches before
  // it were read (their running means finite), and the message names it.
  const std::size_t bad_batch = reading.batch_means.size();
  REQUIRE(bad_batch + 1 < 6);
  for (double mean : reading.batch_means) CHECK(std::isfinite(mean));
  CHECK_THAT(read.error, Catch::Contains("loss is nan at epoch 0, batch " + std::to_string(bad_batch) + " "));
  // Read only at the epoch's end, the same batch is named, though later ones were NaN too.
  CHECK(unread.error == read.error);
  CHECK(read.history.empty());
}

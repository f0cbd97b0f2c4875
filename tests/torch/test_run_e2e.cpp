// `chestlab run` end to end: the run file field by field, h5py, kill -9, resume, exit codes.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "chestlab/engine/runfile.h"
#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

std::string tiny_toml() { return (source_dir() / "tests" / "data" / "tiny.toml").string(); }

// Runs chestlab with arguments; returns exit code, output in `out`.
int run_chestlab(const std::string& args, std::string* out = nullptr) {
  return run_command(shell_quote(chestlab_exe()) + " " + args, out);
}

// History equal in everything but wall-clock seconds.
void require_same_history(const RunInfo& a, const RunInfo& b) {
  REQUIRE(a.folds.size() == b.folds.size());
  for (std::size_t k = 0; k < a.folds.size(); ++k) {
    const auto& ha = a.folds[k].history;
    const auto& hb = b.folds[k].history;
    REQUIRE(ha.size() == hb.size());
    for (std::size_t i = 0; i < ha.size(); ++i) {
      INFO("fold " << k << " epoch " << i);
      CHECK(ha[i].epoch == hb[i].epoch);
      CHECK(ha[i].lr == hb[i].lr);
      CHECK(ha[i].train_loss == hb[i].train_loss);
      CHECK(ha[i].val_loss == hb[i].val_loss);
      CHECK(ha[i].metrics == hb[i].metrics);
    }
    CHECK(a.folds[k].best_epoch == b.folds[k].best_epoch);
    REQUIRE(a.folds[k].weights.size() == b.folds[k].weights.size());
    for (std::size_t w = 0; w < a.folds[k].weights.size(); ++w)
      CHECK(a.folds[k].weights[w].values == b.folds[k].weights[w].values);
  }
}

}  // namespace

TEST_CASE("a tiny 2-fold run writes a complete run file", "[e2e]") {
  const fs::path out = scratch_dir("e2e_full");
  std::string log;
  REQUIRE(run_chestlab("run " + tiny_toml() + " --output " + out.string() + " --quiet", &log) == 0);
  const fs::path file = only_run_file(out);
  CHECK(file.parent_path().filename() == "tiny");  // <output>/<experiment>/<run id>.h5

  RunInfo run = read_run(file.string());
  CHECK(run.status == RunStatus::Complete);
  CHECK(run.meta.experiment == "tiny");
  CHECK(run.meta.seed == 7);
  CHECK(run.meta.monitor == "mean_iou");
  CHECK(run.meta.monitor_mode == MonitorMode::Max);
  CHECK(run.meta.run_id == file.stem().string());
  CHECK(run.meta.run_id.substr(run.meta.run_id.size() - 8) == run.meta.config_hash.substr(0, 8));
  CHECK_FALSE(run.created.empty());
  CHECK_FALSE(run.finished.empty());
  CHECK(run.config_toml.find("plugin = \"resnet_seg\"") != std::string::npos);
  CHECK(run.config_toml.find("bn_momentum") != std::string::npos);  // defaults are resolved
  CHECK(run.environment.threads == 2);
  CHECK(run.environment.device == "cpu");
  CHECK_FALSE(run.environment.libtorch_version.empty());
  CHECK_FALSE(run.environment.plugins.empty());

  REQUIRE(run.folds.size() == 2);
  std::size_t validated = 0;
  for (const auto& fold : run.folds) {
    INFO("fold " << fold.index);
    CHECK(fold.status == FoldStatus::Complete);
    CHECK(fold.metric_names == std::vector<std::string>{"mean_iou", "pixel_accuracy"});
    REQUIRE(fold.history.size() == 2);
    for (std::size_t e = 0; e < 2; ++e) {
      CHECK(fold.history[e].epoch == static_cast<std::int64_t>(e));
      CHECK(fold.history[e].train_loss > 0);
      CHECK(fold.history[e].seconds > 0);
      CHECK(fold.history[e].metrics.size() == 2);
    }
    CHECK(fold.history[0].lr == Approx(0.003));         // cosine at epoch 0
    CHECK(fold.history[1].lr == Approx(0.0015));        // cosine at epoch 1 of 2
    REQUIRE(fold.best_epoch >= 0);
    CHECK(fold.best_value == fold.history[static_cast<std::size_t>(fold.best_epoch)].metrics[0]);
    CHECK(fold.train_ids.size() + fold.val_ids.size() == 40);
    validated += fold.val_ids.size();
    CHECK_FALSE(fold.weights.empty());
    CHECK(fold.weights.front().name == "stem.weight");
  }
  CHECK(validated == 40);  // every sample is validated exactly once across folds
  REQUIRE_FALSE(run.summary.empty());
  CHECK(run.summary[0].metric == "mean_iou");
  CHECK(run.summary[0].n_folds == 2);
  CHECK(run.summary[0].mean == Approx((run.folds[0].best_value + run.folds[1].best_value) / 2));

  SECTION("h5py reads it as documented") {
    const std::string python = python_with_h5py();
    if (python.empty()) {
      WARN("SKIPPED: no Python with h5py (install python3-h5py)");
      return;
    }
    const std::string script = (source_dir() / "tests" / "python" / "check_runfile.py").string();
    std::string py;
    const int rc = run_command(python + " " + shell_quote(script) + " " + shell_quote(file.string()), &py);
    INFO(py);
    CHECK(rc == 0);
  }
  SECTION("compare shows both folds") {
    std::string table;
    REQUIRE(run_chestlab("compare " + file.string() + " --metric mean_iou --format csv", &table) == 0);
    CHECK(table.find("tiny/" + run.meta.run_id) != std::string::npos);
  }
}

TEST_CASE("the same experiment and seed give the same numbers", "[e2e][determinism]") {
  const fs::path a = scratch_dir("e2e_same_a"), b = scratch_dir("e2e_same_b");
  REQUIRE(run_chestlab("run " + tiny_toml() + " --folds 0 --quiet --output " + a.string()) == 0);
  REQUIRE(run_chestlab("run " + tiny_toml() + " --folds 0 --quiet --output " + b.string()) == 0);
  require_same_history(read_run(only_run_file(a).string()), read_run(only_run_file(b).string()));
}

TEST_CASE("an interrupted run resumes to exactly the uninterrupted history", "[e2e][resume]") {
  const fs::path ref_dir = scratch_dir("e2e_resume_ref"), dir = scratch_dir("e2e_resume");
  const std::string args = " --set train.epochs=4 --quiet --output ";
  REQUIRE(run_chestlab("run " + tiny_toml() + args + ref_dir.string()) == 0);

  const int pid = spawn_process({chestlab_exe(), "run", tiny_toml(), "--set", "train.epochs=4", "--quiet",
                                 "--output", dir.string()},
                                (dir / "log.txt").string());
  REQUIRE(pid > 0);
  // Interrupt once the first epoch of fold 0 is on disk.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    auto files = run_files(dir);
    if (!files.empty()) {
      try {
        RunInfo partial = read_run(files.front().string(), LoadWeights::No);
        if (!partial.folds.empty() && !partial.folds[0].history.empty()) break;
      } catch (...) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGINT);
  REQUIRE(wait_process(pid) == 130);
  const fs::path file = only_run_file(dir);
  RunInfo interrupted = read_run(file.string(), LoadWeights::No);
  CHECK(interrupted.status == RunStatus::Interrupted);
  REQUIRE_FALSE(interrupted.folds.empty());
  CHECK(interrupted.folds[0].history.size() < 4);

  std::string log;
  REQUIRE(run_chestlab("run --resume " + file.string() + " --quiet", &log) == 0);
  RunInfo resumed = read_run(file.string());
  CHECK(resumed.status == RunStatus::Complete);
  require_same_history(resumed, read_run(only_run_file(ref_dir).string()));
}

TEST_CASE("kill -9 at random moments leaves a readable file with whole epochs", "[e2e][crash]") {
  std::mt19937 rng(12345);
  int files_checked = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const fs::path dir = scratch_dir("e2e_kill_" + std::to_string(attempt));
    const int pid = spawn_process({chestlab_exe(), "run", tiny_toml(), "--set", "train.epochs=6", "--quiet",
                                   "--output", dir.string()},
                                  (dir.parent_path() / ("kill_" + std::to_string(attempt) + ".log")).string());
    REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1500, 9000)(rng)));
    kill(pid, SIGKILL);
    wait_process(pid);
    for (const auto& file : run_files(dir)) {
      RunInfo run = read_run(file.string());  // must open
      ++files_checked;
      for (const auto& fold : run.folds) {
        for (std::size_t e = 0; e < fold.history.size(); ++e) {
          CHECK(fold.history[e].epoch == static_cast<std::int64_t>(e));
          CHECK(fold.history[e].metrics.size() == 2);
        }
        if (!fold.history.empty()) CHECK(fold.best_epoch >= 0);
      }
    }
  }
  CHECK(files_checked >= 3);  // most kills land after the file was created
}

TEST_CASE("configuration errors exit 2 and name file, line and key", "[e2e][cli]") {
  const fs::path dir = scratch_dir("e2e_cli");
  const fs::path bad = dir / "bad.toml";
  std::ifstream in(tiny_toml());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find("channels = 4"), 12, "chanels = 4");
  std::ofstream(bad) << text;
  std::string out;
  CHECK(run_chestlab("validate " + bad.string(), &out) == 2);
  CHECK_THAT(out, Catch::Contains("bad.toml:18:1") && Catch::Contains("chanels") &&
                      Catch::Contains("did you mean \"channels\""));
  CHECK(run_chestlab("run " + tiny_toml() + " --set train.epochs=0", &out) == 2);
  CHECK_THAT(out, Catch::Contains("train.epochs"));
  CHECK(run_chestlab("run", &out) == 2);
  CHECK(run_chestlab("frobnicate", &out) == 2);
  CHECK(run_chestlab("validate " + tiny_toml(), &out) == 0);
  CHECK(run_chestlab("--version", &out) == 0);
}

TEST_CASE("a non-finite loss fails its fold with the error recorded; the other folds go on", "[e2e][nan]") {
  const fs::path dir = scratch_dir("e2e_nan");
  std::string log;
  const std::string plugins = (fs::path(test_plugin_dir()) / "nan_loss").string();
  CHECK(run_chestlab("run " + tiny_toml() + " --set loss.plugin=\"nan_when_synth0\" --quiet --plugin-path " +
                         plugins + " --output " + dir.string(),
                     &log) == 1);
  INFO(log);
  CHECK_THAT(log, Catch::Contains("loss is nan"));
  RunInfo run = read_run(only_run_file(dir).string(), LoadWeights::No);
  CHECK(run.status == RunStatus::Failed);
  REQUIRE(run.folds.size() == 2);
  int failed = 0, complete = 0;
  for (const auto& fold : run.folds) {
    if (fold.status == FoldStatus::Failed) {
      ++failed;
      CHECK_THAT(fold.error, Catch::Contains("loss is nan") && Catch::Contains("epoch 0"));
      // The failing fold trains on synth-0; the complete one validates it.
      CHECK(std::find(fold.train_ids.begin(), fold.train_ids.end(), "synth-0") != fold.train_ids.end());
    } else {
      ++complete;
      CHECK(fold.status == FoldStatus::Complete);
      CHECK(fold.history.size() == 2);
    }
  }
  CHECK(failed == 1);
  CHECK(complete == 1);
}

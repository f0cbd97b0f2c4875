// The HDF5 run file: round trip, transactions, crash safety, summary, compare, h5py layout.
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "chestlab/engine/runfile.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

RunMeta sample_meta(const std::string& run_id = "run-1") {
  RunMeta meta;
  meta.experiment = "lungseg";
  meta.run_id = run_id;
  meta.config_hash = "cafe01";
  meta.seed = 1234567890123LL;
  meta.monitor = "dice";
  meta.monitor_mode = MonitorMode::Max;
  return meta;
}

Environment sample_env() {
  Environment env;
  env.libtorch_version = "1.13.1";
  env.device = "cpu";
  env.threads = 2;
  env.hostname = "node-7";
  env.git_commit = "unknown";
  env.experiment_file = "experiments/lungseg.toml";
  env.base_dir = "/work/main";
  env.plugins = {{"unet", "model", "1.0.0", "/x/libunet.so", "ab12"},
                 {"dice", "metric", "0.3.0", "/x/libdice.so", "cd34"}};
  return env;
}

const std::string kConfig = "[experiment]\nname = \"lungseg\"\n# ünïcode\n";

HistoryRow epoch_row(std::int64_t epoch, std::vector<double> metrics) {
  HistoryRow row;
  row.epoch = epoch;
  row.lr = 0.001 / (epoch + 1);
  row.train_loss = 1.0 - 0.1 * epoch;
  row.val_loss = 1.2 - 0.1 * epoch;
  row.seconds = 10.5 + epoch;
  row.metrics = std::move(metrics);
  return row;
}

std::vector<NamedArray> sample_weights(float base) {
  NamedArray conv{"stages.0.conv.weight", {2, 1, 3}, {}};
  for (int i = 0; i < 6; ++i) conv.values.push_back(base + static_cast<float>(i));
  NamedArray tracked{"stages.0.bn.num_batches_tracked", {}, {base}};
  NamedArray mean{"stages.0.bn.running_mean", {2}, {base, -base}};
  return {conv, tracked, mean};
}

// Fold 0: dice 0.5, 0.7, 0.6 (best epoch 1); fold 1: dice 0.8, 0.9 (best epoch 1), complete.
std::string write_two_fold_run(const fs::path& dir, const std::string& run_id = "run-1") {
  std::string path = (dir / "lungseg" / (run_id + ".h5")).string();
  RunFile run = RunFile::create(path, sample_meta(run_id), kConfig, sample_env());
  run.transaction([](RunWriter& w) {
    w.begin_fold(0, {"dice", "iou"}, {"a", "b", "c"}, {"d"});
    w.begin_fold(1, {"dice", "iou"}, {"a", "d"}, {"b", "c"});
  });
  const double dice0[] = {0.5, 0.7, 0.6};
  for (int e = 0; e < 3; ++e) {
    run.transaction([&](RunWriter& w) {
      w.append_epoch(0, epoch_row(e, {dice0[e], dice0[e] - 0.1}));
      if (e == 1) w.set_fold_best(0, 1, 0.7, sample_weights(1.0f));
    });
  }
  run.transaction([](RunWriter& w) {
    w.set_fold_status(0, FoldStatus::StoppedEarly);
    w.append_epoch(1, epoch_row(0, {0.8, 0.75}));
    w.set_fold_best(1, 0, 0.8, sample_weights(2.0f));
  });
  run.transaction([](RunWriter& w) {
    w.append_epoch(1, epoch_row(1, {0.9, 0.85}));
    w.set_fold_best(1, 1, 0.9, sample_weights(3.0f));
    w.set_fold_status(1, FoldStatus::Complete);
    w.add_skipped("x1", "/data/x1.dcm", "truncated pixel data");
    w.add_skipped("x1", "/data/x1.dcm", "truncated pixel data");  // listed once
    w.add_skipped("x2", "/data/x2.dcm", "bad header");
    w.write_test({{"dice", 0.875}, {"iou", 0.8}});
    w.set_fold_resume(1, ResumeBlob{2, {{"model", std::string("ab\0c", 4)}, {"optimizer", ""}}});
    w.write_summary();
    w.set_status(RunStatus::Complete);
    w.set_finished_now();
  });
  return path;
}

void require_same_weights(const std::vector<NamedArray>& got, const std::vector<NamedArray>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CHECK(got[i].name == want[i].name);
    CHECK(got[i].shape == want[i].shape);
    CHECK(got[i].values == want[i].values);
  }
}

// Every temporary a transaction writes is named `<run file>.tmp...`; none may be left.
bool no_temporaries_beside(const std::string& run_path) {
  const std::string name = fs::path(run_path).filename().string();
  for (const auto& e : fs::directory_iterator(fs::path(run_path).parent_path()))
    if (e.path().filename().string().rfind(name + ".tmp", 0) == 0) return false;
  return true;
}

bool looks_like_iso8601_utc(const std::string& t) {
  return t.size() == 20 && t[4] == '-' && t[10] == 'T' && t.back() == 'Z';
}

}  // namespace

TEST_CASE("a run file reads back every field it was given", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_roundtrip");
  std::string path = write_two_fold_run(dir);
  CHECK(no_temporaries_beside(path));

  RunInfo info = read_run(path);
  CHECK(info.path == path);
  CHECK_FALSE(info.chestlab_version.empty());
  CHECK(info.meta.experiment == "lungseg");
  CHECK(info.meta.run_id == "run-1");
  CHECK(info.meta.config_hash == "cafe01");
  CHECK(info.meta.seed == 1234567890123LL);
  CHECK(info.meta.monitor == "dice");
  CHECK(info.meta.monitor_mode == MonitorMode::Max);
  CHECK(info.status == RunStatus::Complete);
  CHECK(looks_like_iso8601_utc(info.created));
  CHECK(looks_like_iso8601_utc(info.finished));
  CHECK(info.config_toml == kConfig);

  const Environment& env = info.environment;
  CHECK(env.libtorch_version == "1.13.1");
  CHECK(env.device == "cpu");
  CHECK(env.threads == 2);
  CHECK(env.hostname == "node-7");
  CHECK(env.git_commit == "unknown");
  CHECK(env.chestlab_version == info.chestlab_version);  // empty in sample_env: the library's
  CHECK(env.experiment_file == "experiments/lungseg.toml");
  CHECK(env.base_dir == "/work/main");
  REQUIRE(env.plugins.size() == 2);
  CHECK(env.plugins[1].name == "dice");
  CHECK(env.plugins[1].kind == "metric");
  CHECK(env.plugins[1].version == "0.3.0");
  CHECK(env.plugins[1].file == "/x/libdice.so");
  CHECK(env.plugins[1].hash == "cd34");

  REQUIRE(info.folds.size() == 2);
  const FoldInfo& f0 = info.folds[0];
  CHECK(f0.index == 0);
  CHECK(f0.status == FoldStatus::StoppedEarly);
  CHECK(f0.best_epoch == 1);
  CHECK(f0.best_value == 0.7);
  CHECK(f0.error.empty());
  CHECK(f0.metric_names == std::vector<std::string>{"dice", "iou"});
  CHECK(f0.train_ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(f0.val_ids == std::vector<std::string>{"d"});
  REQUIRE(f0.history.size() == 3);
  for (int e = 0; e < 3; ++e) {
    const HistoryRow want = epoch_row(e, {});
    CHECK(f0.history[e].epoch == e);
    CHECK(f0.history[e].lr == want.lr);
    CHECK(f0.history[e].train_loss == want.train_loss);
    CHECK(f0.history[e].val_loss == want.val_loss);
    CHECK(f0.history[e].seconds == want.seconds);
  }
  CHECK(f0.history[2].metrics == std::vector<double>{0.6, 0.6 - 0.1});
  require_same_weights(f0.weights, sample_weights(1.0f));
  CHECK(f0.best_metric("iou") == Approx(0.6));

  const FoldInfo& f1 = info.folds[1];
  CHECK(f1.status == FoldStatus::Complete);
  CHECK(f1.best_epoch == 1);
  CHECK(f1.val_ids == std::vector<std::string>{"b", "c"});
  require_same_weights(f1.weights, sample_weights(3.0f));

  std::optional<ResumeBlob> resume = read_fold_resume(path, 1);
  REQUIRE(resume.has_value());
  CHECK(resume->next_epoch == 2);
  CHECK(resume->parts == std::map<std::string, std::string>{{"model", std::string("ab\0c", 4)}, {"optimizer", ""}});
  CHECK_FALSE(read_fold_resume(path, 0).has_value());

  REQUIRE(info.skipped.size() == 2);
  CHECK(info.skipped[0].id == "x1");
  CHECK(info.skipped[0].file == "/data/x1.dcm");
  CHECK(info.skipped[0].reason == "truncated pixel data");
  CHECK(info.skipped[1].id == "x2");
  REQUIRE(info.test.size() == 2);
  CHECK(info.test[0].metric == "dice");
  CHECK(info.test[0].value == 0.875);

  // Without weight values: names and shapes only.
  RunInfo light = read_run(path, LoadWeights::No);
  REQUIRE(light.folds[0].weights.size() == 3);
  CHECK(light.folds[0].weights[0].shape == std::vector<std::int64_t>{2, 1, 3});
  CHECK(light.folds[0].weights[0].values.empty());
}

TEST_CASE("the summary is the mean and sample std of best-epoch values of finished folds", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_summary");
  RunFile run = RunFile::create((dir / "r.h5").string(), sample_meta(), kConfig, sample_env());
  // Best-epoch dice per fold: 0.8, 0.9, 0.7 (finished); fold 3 is still running and excluded.
  const double best[] = {0.8, 0.9, 0.7, 0.99};
  run.transaction([&](RunWriter& w) {
    for (int k = 0; k < 4; ++k) {
      w.begin_fold(k, {"dice"}, {"a"}, {"b"});
      w.append_epoch(k, epoch_row(0, {best[k] - 0.2}));
      w.append_epoch(k, epoch_row(1, {best[k]}));
      w.append_epoch(k, epoch_row(2, {best[k] - 0.1}));
      w.set_fold_best(k, 1, best[k], sample_weights(0.0f));
      if (k < 3) w.set_fold_status(k, k == 1 ? FoldStatus::StoppedEarly : FoldStatus::Complete);
    }
    w.write_summary();
  });
  RunInfo info = run.read(LoadWeights::No);
  REQUIRE(info.summary.size() == 1);
  CHECK(info.summary[0].metric == "dice");
  CHECK(info.summary[0].n_folds == 3);
  CHECK(info.summary[0].mean == Approx(0.8));
  // sqrt(((0.8-0.8)^2 + (0.9-0.8)^2 + (0.7-0.8)^2) / (3 - 1)) = sqrt(0.01) = 0.1
  CHECK(info.summary[0].std == Approx(0.1));

  SECTION("one fold has std 0") {
    std::vector<FoldInfo> one{info.folds[0]};
    std::vector<SummaryRow> s = compute_summary(one);
    REQUIRE(s.size() == 1);
    CHECK(s[0].mean == Approx(0.8));
    CHECK(s[0].std == 0.0);
    CHECK(s[0].n_folds == 1);
  }
}

TEST_CASE("history extends across transactions", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_extend");
  std::string path = (dir / "r.h5").string();
  RunFile::create(path, sample_meta(), kConfig, sample_env())
      .transaction([](RunWriter& w) { w.begin_fold(2, {"dice"}, {"a"}, {"b"}); });
  for (int e = 0; e < 100; ++e)  // more than one chunk of rows
    RunFile::open(path).transaction([&](RunWriter& w) { w.append_epoch(2, epoch_row(e, {e * 0.01})); });
  RunInfo info = read_run(path, LoadWeights::No);
  REQUIRE(info.folds.size() == 1);
  CHECK(info.folds[0].index == 2);
  CHECK(info.fold(0) == nullptr);
  REQUIRE(info.folds[0].history.size() == 100);
  for (int e = 0; e < 100; ++e) {
    CHECK(info.folds[0].history[e].epoch == e);
    CHECK(info.folds[0].history[e].metrics[0] == e * 0.01);
  }
}

TEST_CASE("a transaction that throws leaves the previous file intact", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_atomic");
  std::string path = (dir / "r.h5").string();
  RunFile run = RunFile::create(path, sample_meta(), kConfig, sample_env());
  run.transaction([](RunWriter& w) {
    w.begin_fold(0, {"dice"}, {"a"}, {"b"});
    w.append_epoch(0, epoch_row(0, {0.5}));
  });

  SECTION("the caller's exception") {
    struct Abort {};
    CHECK_THROWS_AS(run.transaction([](RunWriter& w) {
                      w.append_epoch(0, epoch_row(1, {0.6}));
                      w.set_fold_best(0, 1, 0.6, sample_weights(5.0f));
                      w.set_status(RunStatus::Failed);
                      throw Abort{};
                    }),
                    Abort);
  }
  SECTION("a writer error midway") {
    CHECK_THROWS_WITH(run.transaction([](RunWriter& w) {
                        w.append_epoch(0, epoch_row(1, {0.6}));
                        w.append_epoch(0, epoch_row(1, {0.7}));  // epoch does not increase
                      }),
                      Catch::Contains(path) && Catch::Contains("does not follow"));
  }
  CHECK(no_temporaries_beside(path));
  RunInfo info = read_run(path);
  CHECK(info.status == RunStatus::Running);
  REQUIRE(info.folds[0].history.size() == 1);
  CHECK(info.folds[0].best_epoch == -1);
  CHECK(std::isnan(info.folds[0].best_value));
  CHECK(info.folds[0].weights.empty());
}

TEST_CASE("writer errors name the file and the mistake", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_errors");
  std::string path = (dir / "r.h5").string();
  RunFile run = RunFile::create(path, sample_meta(), kConfig, sample_env());
  run.transaction([](RunWriter& w) { w.begin_fold(0, {"dice", "iou"}, {"a"}, {"b"}); });
  auto attempt = [&](std::function<void(RunWriter&)> edit) {
    try {
      run.transaction(edit);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(attempt([](RunWriter& w) { w.append_epoch(0, epoch_row(0, {0.5})); }),
             Catch::Contains(path) && Catch::Contains("1 metric values, the fold has 2"));
  CHECK_THAT(attempt([](RunWriter& w) { w.append_epoch(4, epoch_row(0, {0.5, 0.4})); }),
             Catch::Contains("fold 4 does not exist"));
  CHECK_THAT(attempt([](RunWriter& w) { w.set_fold_best(0, 3, 0.5, {}); }),
             Catch::Contains("best epoch 3 has no history row"));
  CHECK_THAT(attempt([](RunWriter& w) { w.begin_fold(0, {"dice"}, {}, {}); }),
             Catch::Contains("fold 0 exists already"));
  CHECK_THAT(attempt([](RunWriter& w) { w.begin_fold(1, {"lr"}, {}, {}); }),
             Catch::Contains("clashes with a history column"));
  CHECK_THAT(attempt([](RunWriter& w) {
               w.append_epoch(0, epoch_row(0, {0.5, 0.4}));
               w.set_fold_best(0, 0, 0.5, {NamedArray{"w", {2, 2}, {1, 2, 3}}});
             }),
             Catch::Contains("'w' has 3 values for a shape holding 4"));
  CHECK_THAT(attempt([](RunWriter& w) { w.remove_fold(0); }), Catch::Equals("no error"));
  CHECK(read_run(path).folds.empty());
  CHECK_THROWS_WITH(RunFile::create(path, sample_meta(), kConfig, sample_env()), Catch::Contains("already exists"));
}

TEST_CASE("reading something that is not a run file fails clearly", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_notrun");
  CHECK_THROWS_WITH(read_run((dir / "absent.h5").string()), Catch::Contains("no such file"));
  std::string text = (dir / "notes.txt").string();
  std::ofstream(text) << "hello\n";
  CHECK_THROWS_AS(read_run(text), DataError);
  CHECK_THROWS_WITH(read_run(text), Catch::Contains("notes.txt") && Catch::Contains("not an HDF5 file"));
  std::string plain = (dir / "plain.h5").string();
  H5Fclose(H5Fcreate(plain.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  CHECK_THROWS_WITH(read_run(plain), Catch::Contains("not a chestlab run file"));
  CHECK_THROWS_AS(RunFile::open(plain), DataError);
}

TEST_CASE("a new best epoch overwrites the weights in place", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_inplace");
  std::string path = (dir / "r.h5").string();
  RunFile run = RunFile::create(path, sample_meta(), kConfig, sample_env());
  const std::size_t n = 1 << 18;  // 1 MiB of float32
  auto big = [&](float v) { return std::vector<NamedArray>{{"head.weight", {512, 512}, std::vector<float>(n, v)}}; };
  run.transaction([&](RunWriter& w) {
    w.begin_fold(0, {"dice"}, {"a"}, {"b"});
    w.append_epoch(0, epoch_row(0, {0.1}));
    w.set_fold_best(0, 0, 0.1, big(0.0f));
  });
  const auto size_after_first = fs::file_size(path);
  for (int e = 1; e <= 10; ++e)
    run.transaction([&](RunWriter& w) {
      w.append_epoch(0, epoch_row(e, {0.1 * e}));
      w.set_fold_best(0, e, 0.1 * e, big(static_cast<float>(e)));
    });
  // A second copy of the weights would add n * 4 bytes; allow a quarter of that for history.
  CHECK(fs::file_size(path) < size_after_first + n * sizeof(float) / 4);
  RunInfo info = read_run(path);
  CHECK(info.folds[0].best_epoch == 10);
  CHECK(info.folds[0].weights[0].values == std::vector<float>(n, 10.0f));
}

TEST_CASE("the resume state round-trips and is rewritten in place", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_resume");
  std::string path = (dir / "r.h5").string();
  RunFile run = RunFile::create(path, sample_meta(), kConfig, sample_env());
  run.transaction([](RunWriter& w) { w.begin_fold(0, {"dice"}, {"a"}, {"b"}); });
  CHECK_FALSE(read_fold_resume(path, 0).has_value());
  CHECK_FALSE(read_fold_resume(path, 5).has_value());

  // Archives whose size wobbles a little from epoch to epoch, like LibTorch's.
  auto blob_for = [](std::int64_t epoch) {
    ResumeBlob blob;
    blob.next_epoch = epoch + 1;
    std::string model(3'000'000 + 7 * static_cast<std::size_t>(epoch % 3), '\0');
    for (std::size_t i = 0; i < model.size(); ++i) model[i] = static_cast<char>((i * 31 + epoch) & 0xff);
    blob.parts["model"] = model;
    blob.parts["scheduler"] = "step=" + std::to_string(epoch);
    blob.parts["empty"] = "";
    return blob;
  };
  run.transaction([&](RunWriter& w) {
    w.append_epoch(0, epoch_row(0, {0.1}));
    w.set_fold_resume(0, blob_for(0));
  });
  const auto size_after_first = fs::file_size(path);
  for (int e = 1; e < 8; ++e)
    run.transaction([&](RunWriter& w) {
      w.append_epoch(0, epoch_row(e, {0.1}));
      w.set_fold_resume(0, blob_for(e));
    });
  // Each new copy of the model part would add 3 MB.
  CHECK(fs::file_size(path) < size_after_first + 1'000'000);
  std::optional<ResumeBlob> got = read_fold_resume(path, 0);
  REQUIRE(got.has_value());
  CHECK(got->next_epoch == 8);
  CHECK(got->parts == blob_for(7).parts);

  SECTION("a part no longer given is dropped") {
    run.transaction([](RunWriter& w) { w.set_fold_resume(0, ResumeBlob{9, {{"model", "m"}}}); });
    got = read_fold_resume(path, 0);
    REQUIRE(got.has_value());
    CHECK(got->parts == std::map<std::string, std::string>{{"model", "m"}});
  }
  SECTION("a missing fold is an error naming it") {
    CHECK_THROWS_WITH(run.transaction([](RunWriter& w) { w.set_fold_resume(3, ResumeBlob{}); }),
                      Catch::Contains("fold 3 does not exist"));
  }
}

namespace {

// Appends epochs (and every third epoch new best weights) until killed.
[[noreturn]] void append_until_killed(const std::string& path) {
  try {
    RunFile run = RunFile::open(path);
    std::int64_t next = static_cast<std::int64_t>(run.read(LoadWeights::No).folds[0].history.size());
    for (;; ++next) {
      run.transaction([&](RunWriter& w) {
        w.append_epoch(0, epoch_row(next, {0.001 * next}));
        if (next % 3 == 0) w.set_fold_best(0, next, 0.001 * next, sample_weights(static_cast<float>(next)));
      });
    }
  } catch (...) {
    _exit(1);
  }
}

}  // namespace

TEST_CASE("a kill -9 during transactions leaves a complete file", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_crash");
  std::string path = (dir / "r.h5").string();
  RunFile::create(path, sample_meta(), kConfig, sample_env()).transaction([](RunWriter& w) {
    w.begin_fold(0, {"dice"}, {"a"}, {"b"});
  });
  std::mt19937 rng(20240501);
  // A transaction takes a few to some tens of milliseconds (mostly fsync): the kills land
  // before, inside and between them.
  std::uniform_int_distribution<int> delay_ms(2, 150);
  std::size_t rows_before = 0;
  for (int round = 0; round < 12; ++round) {
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) append_until_killed(path);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    INFO("round " << round);
    REQUIRE(WIFSIGNALED(status));  // the child was killed, not stopped by an error
    REQUIRE(WTERMSIG(status) == SIGKILL);

    RunInfo info = read_run(path);
    const FoldInfo& fold = info.folds.at(0);
    REQUIRE(fold.history.size() >= rows_before);
    for (std::size_t i = 0; i < fold.history.size(); ++i) {
      REQUIRE(fold.history[i].epoch == static_cast<std::int64_t>(i));
      REQUIRE(fold.history[i].metrics == std::vector<double>{0.001 * static_cast<double>(i)});
      REQUIRE(fold.history[i].train_loss == epoch_row(static_cast<std::int64_t>(i), {}).train_loss);
    }
    // Weights and best epoch come from the same transaction.
    if (fold.best_epoch >= 0) {
      REQUIRE(fold.best_epoch % 3 == 0);
      require_same_weights(fold.weights, sample_weights(static_cast<float>(fold.best_epoch)));
    }
    rows_before = fold.history.size();
  }
  CHECK(rows_before > 0);  // the children did get work done between kills
}

namespace {

// Two runs with two folds each: run-b's fold 1 is still running.
std::vector<RunInfo> two_compare_runs(const fs::path& dir) {
  RunFile a = RunFile::create((dir / "a.h5").string(), sample_meta("run-a"), kConfig, sample_env());
  a.transaction([](RunWriter& w) {
    const double dice[] = {0.8, 0.9};
    for (int k = 0; k < 2; ++k) {
      w.begin_fold(k, {"dice", "iou"}, {"a"}, {"b"});
      w.append_epoch(k, epoch_row(0, {dice[k] - 0.1, 0.5}));
      w.append_epoch(k, epoch_row(1, {dice[k], 0.6 + 0.1 * k}));
      w.set_fold_best(k, 1, dice[k], {});
      w.set_fold_status(k, FoldStatus::Complete);
    }
    w.write_test({{"dice", 0.85}});
    w.set_status(RunStatus::Complete);
  });
  RunFile b = RunFile::create((dir / "b.h5").string(), sample_meta("run-b"), kConfig, sample_env());
  b.transaction([](RunWriter& w) {
    w.begin_fold(0, {"dice", "iou"}, {"a"}, {"b"});
    w.append_epoch(0, epoch_row(0, {0.7, 0.55}));
    w.set_fold_best(0, 0, 0.7, {});
    w.set_fold_status(0, FoldStatus::Complete);
    w.begin_fold(1, {"dice", "iou"}, {"a"}, {"b"});
    w.append_epoch(1, epoch_row(0, {0.65, 0.5}));
    w.set_fold_best(1, 0, 0.65, {});
    w.set_status(RunStatus::Interrupted);
  });
  return {read_run((dir / "a.h5").string(), LoadWeights::No), read_run((dir / "b.h5").string(), LoadWeights::No)};
}

}  // namespace

TEST_CASE("compare lays runs side by side", "[runfile]") {
  fs::path dir = test::scratch_dir("runfile_compare");
  std::vector<RunInfo> runs = two_compare_runs(dir);

  SECTION("csv, all metrics") {
    CompareTable table = build_compare_table(runs, std::nullopt);
    // dice run-a: mean 0.85, std sqrt(0.005) = 0.0707; run-b: only fold 0 finished.
    CHECK(render_compare(table, CompareFormat::Csv) ==
          "metric,run,status,fold_0,fold_1,mean,std,n_folds,incomplete_folds,test\n"
          "dice,lungseg/run-a,complete,0.8000,0.9000,0.8500,0.0707,2,,0.8500\n"
          "dice,lungseg/run-b,interrupted,0.7000,0.6500,0.7000,0.0000,1,1,\n"
          "iou,lungseg/run-a,complete,0.6000,0.7000,0.6500,0.0707,2,,\n"
          "iou,lungseg/run-b,interrupted,0.5500,0.5000,0.5500,0.0000,1,1,\n");
  }
  SECTION("table, one metric") {
    CompareTable table = build_compare_table(runs, std::string("dice"));
    REQUIRE(table.blocks.size() == 1);
    CHECK(render_compare(table, CompareFormat::Table) ==
          "metric: dice\n"
          "run            status       fold 0   fold 1       mean ± std    test\n"
          "lungseg/run-a  complete     0.8000   0.9000  0.8500 ± 0.0707  0.8500\n"
          "lungseg/run-b  interrupted  0.7000  0.6500*  0.7000 ± 0.0000       -\n"
          "\n* fold not finished (pending, running, interrupted or failed): left out of mean ± std\n");
  }
  SECTION("markdown") {
    std::string md = render_compare(build_compare_table(runs, std::string("iou")), CompareFormat::Markdown);
    CHECK_THAT(md, Catch::StartsWith("### iou\n\n| run | status | fold 0 | fold 1 | mean ± std | test |\n"
                                     "| :--- | :--- | ---: | ---: | ---: | ---: |\n"
                                     "| lungseg/run-a | complete | 0.6000 | 0.7000 | 0.6500 ± 0.0707 | - |\n"
                                     "| lungseg/run-b | interrupted | 0.5500 | 0.5000\\* |"));
  }
  SECTION("an unknown metric names the available ones") {
    CHECK_THROWS_WITH(build_compare_table(runs, std::string("auc")), Catch::Contains("available: dice, iou"));
  }
}

TEST_CASE("h5py reads the documented layout (tests/python/check_runfile.py)", "[runfile]") {
  const std::string python = test::python_with_h5py();
  if (python.empty()) {
    WARN("SKIPPED: no python3 with h5py (apt install python3-h5py)");
    return;
  }
  fs::path dir = test::scratch_dir("runfile_python");
  fs::path script = test::source_dir() / "tests/python/check_runfile.py";
  REQUIRE(fs::exists(script));
  std::string path = write_two_fold_run(dir);
  std::string output;
  int rc = test::run_command(python + " " + script.string() + " " + path, &output);
  INFO(output);
  CHECK(rc == 0);
  CHECK_THAT(output, Catch::Contains("weights") && Catch::Contains("summary"));

  SECTION("the checker rejects a file that breaks the layout") {
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(file >= 0);
    hid_t fold = H5Gopen2(file, "folds/1", H5P_DEFAULT);
    REQUIRE(H5Adelete(fold, "best_epoch") >= 0);
    H5Gclose(fold);
    H5Fclose(file);
    std::string broken_output;
    CHECK(test::run_command(python + " " + script.string() + " " + path, &broken_output) != 0);
    CHECK_THAT(broken_output, Catch::Contains("best_epoch"));
  }
}

TEST_CASE("a damaged run file is refused by its seal before HDF5 reads a byte", "[runfile][seal]") {
  // Regression (found by tests/fuzz): HDF5 1.10 trusts what it reads, and a run file with a
  // changed global heap size or heap reference ended compare, export, ... in a segmentation
  // fault inside H5HG_read instead of a data error.
  fs::path dir = test::scratch_dir("runfile_seal");
  const std::string path = write_two_fold_run(dir);
  auto contents = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string bytes = contents(path);
  REQUIRE(bytes.size() > 1024);
  CHECK(bytes.rfind("chestlab run file seal v1\ncrc32 ", 0) == 0);
  CHECK(bytes.substr(512, 8) == std::string("\x89HDF\r\n\x1a\n", 8));  // HDF5 after the 512-byte user block
  auto write = [&](const std::string& name, const std::string& data) {
    const std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(data.data(), static_cast<std::streamsize>(data.size()));
    return p;
  };
  auto error_of = [](const std::string& p) -> std::string {
    try {
      read_run(p, LoadWeights::Yes);
    } catch (const DataError& e) {
      CHECK(e.file == p);
      return e.what();
    }
    return "no error";
  };
  CHECK(error_of(write("copy.h5", bytes)) == "no error");

  // The first object of the first global heap collection (the strings) claims 2 GiB:
  // "GCOL", version, 3 reserved, collection size (8), then index (2), references (2),
  // reserved (4) and the object's size (8).
  const std::size_t gcol = bytes.find("GCOL");
  REQUIRE(gcol != std::string::npos);
  std::string heap = bytes;
  const std::uint64_t huge = 0x7fffffff;
  std::memcpy(&heap[gcol + 16 + 8], &huge, 8);
  const std::string damaged = write("heap.h5", heap);
  CHECK_THAT(error_of(damaged), Catch::Contains("damaged") && Catch::Contains("does not match its seal"));
  CHECK_THROWS_AS(read_run(damaged, LoadWeights::No), DataError);
  CHECK_THROWS_AS(read_fold_resume(damaged, 1), DataError);
  CHECK_THROWS_AS(RunFile::open(damaged), DataError);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x10);
  CHECK_THAT(error_of(write("flip.h5", flipped)), Catch::Contains("does not match its seal"));
  CHECK_THAT(error_of(write("short.h5", bytes.substr(0, bytes.size() - 100))), Catch::Contains("truncated"));
  CHECK_THAT(error_of(write("long.h5", bytes + "x")), Catch::Contains("extended"));
  std::string magic = bytes;
  magic[3] = 'X';
  CHECK_THAT(error_of(write("magic.h5", magic)), Catch::Contains("user block holds no valid chestlab seal"));
  std::string digits = bytes;
  digits[std::string("chestlab run file seal v1\ncrc32 ").size()] = 'g';
  CHECK_THAT(error_of(write("digits.h5", digits)), Catch::Contains("seal (the first 512 bytes) is not readable"));

  // A file from before the seal (HDF5 from byte 0, no user block) is read as it is.
  const std::string legacy = write("legacy.h5", bytes.substr(512));
  CHECK(error_of(legacy) == "no error");
  CHECK(read_run(legacy).folds.size() == 2);

  // Every transaction seals the new file again.
  RunFile::open(path).transaction([](RunWriter& w) { w.set_status(RunStatus::Interrupted); });
  const std::string after = contents(path);
  CHECK(after.substr(0, 64) != bytes.substr(0, 64));
  CHECK(read_run(path).status == RunStatus::Interrupted);
}

TEST_CASE("per-image values round-trip, are replaced with the best epoch, and are checked", "[runfile][per_image]") {
  fs::path dir = test::scratch_dir("runfile_per_image");
  std::string path = (dir / "r.h5").string();
  RunFile run = RunFile::create(path, sample_meta(), kConfig, sample_env());
  run.transaction([](RunWriter& w) { w.begin_fold(0, {"dice", "iou"}, {"a", "b"}, {"c", "d", "e"}); });
  CHECK(read_run(path).folds[0].per_image.empty());  // none until written
  CHECK(read_run(path).folds[0].per_image_epoch == -1);

  PerImageScores first{{"c", "d", "e"}, {"dice", "iou"}, {{0.5, 1.0, 0.0}, {1.0 / 3, 1.0, 0.0}}};
  PerImageScores better{{"e", "c", "d"}, {"dice"}, {{0.25, 0.75, 0.875}}};
  run.transaction([&](RunWriter& w) { w.set_fold_per_image(0, 0, first); });
  run.transaction([&](RunWriter& w) { w.set_fold_per_image(0, 3, better); });  // a later best epoch
  run.transaction([&](RunWriter& w) {
    w.write_test_per_image(PerImageScores{{"x"}, {"dice"}, {{std::numeric_limits<double>::quiet_NaN()}}});
  });

  RunInfo info = read_run(path, LoadWeights::No);
  const PerImageScores& got = info.folds[0].per_image;
  CHECK(info.folds[0].per_image_epoch == 3);
  CHECK(got.ids == better.ids);  // evaluation order kept
  CHECK(got.metrics == better.metrics);
  REQUIRE(got.column("dice") != nullptr);
  CHECK(*got.column("dice") == better.values[0]);
  CHECK(got.column("iou") == nullptr);  // the earlier epoch's columns are gone
  REQUIRE(info.test_per_image.ids == std::vector<std::string>{"x"});
  CHECK(std::isnan(info.test_per_image.values.at(0).at(0)));  // a NaN value survives as NaN

  auto error_of = [&](const PerImageScores& scores) {
    try {
      run.transaction([&](RunWriter& w) { w.set_fold_per_image(0, 4, scores); });
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of({{"c", "d"}, {"dice"}, {{0.5}}}), Catch::Contains(path) && Catch::Contains("'dice' has 1 values for 2 images"));
  CHECK_THAT(error_of({{"c"}, {"dice", "dice"}, {{0.5}, {0.5}}}), Catch::Contains("'dice' repeats"));
  CHECK_THAT(error_of({{"c"}, {"id"}, {{0.5}}}), Catch::Contains("'id' repeats or is 'id'"));
  CHECK_THAT(error_of({{"c"}, {"dice"}, {}}), Catch::Contains("0 columns for 1 metrics"));
  CHECK(*read_run(path).folds[0].per_image.column("dice") == better.values[0]);  // a refused edit changes nothing

  run.transaction([](RunWriter& w) { w.set_fold_per_image(0, 5, {}); });  // empty removes
  CHECK(read_run(path).folds[0].per_image.empty());
  CHECK(read_run(path).folds[0].per_image_epoch == -1);
}

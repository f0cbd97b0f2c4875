// `chestlab run`: assembles an experiment, trains its folds and records everything in one
// run file, crash-safe epoch by epoch, resumable after an interruption. It prints nothing:
// what happens is told to a RunObserver, what came of it is the RunOutcome.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"
#include "chestlab/host/trainer.h"

namespace chestlab {

class PluginRegistry;

struct RunRequest {
  std::string experiment_file;          // a new run (empty when resuming)
  std::vector<std::string> overrides;   // --set, plus --folds/--device/--output turned into overrides
  std::string resume;                   // --resume RUN.h5
  // A new run from configuration text instead of a file (`chestlab rerun`: a run file's
  // recorded /config); relative paths resolve against `base_dir`, as recorded.
  std::string config_toml;
  std::string config_source;            // names the text in messages, e.g. "RUN.h5:/config"
  std::string base_dir;
  std::string run_id;                   // a new run's id; empty: make_run_id(config hash) (sweeps fix it)
  std::string run_path;                 // a new run's file; empty: <output>/<name>/<run id>.h5
  // The plugins, discovered by the caller (the app does it once, in app/cli.h). Required.
  std::shared_ptr<const PluginRegistry> registry;
  // --distributed: one rank of a data-parallel run (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
  // chestlab/host/distributed.h). Only rank 0 writes the run file; the others return an empty path.
  bool distributed = false;
  // --distributed-timeout: how long each collective waits for the other ranks; zero: Gloo's
  // 30 minutes.
  std::chrono::milliseconds distributed_timeout{0};
  // --tensorboard: write TensorBoard event files even when the configuration does not set
  // train.tensorboard (a resumed run, whose recorded configuration cannot change). A new run
  // rather sets train.tensorboard=true, which is recorded. docs/tensorboard.md.
  bool tensorboard = false;
};

// This process joined a data-parallel run.
struct RankJoined {
  int rank = 0;
  int world_size = 1;
  std::string backend;      // "gloo", "nccl"
  std::string env_source;   // where rank and world size came from, e.g. "RANK/WORLD_SIZE"
  std::string device;
  std::string master_addr;
  int master_port = 0;
  std::int64_t batch_size = 0;  // per rank; the global batch is world_size times it
};

struct RunStarted {
  std::string path;  // the run file
  std::size_t samples = 0;
  std::string device;
  int threads = 0;
  std::vector<std::string> metric_names;  // the order of every HistoryRow's metrics
  std::int64_t epochs = 0;
};

struct FoldStarted {
  int fold = 0;
  std::size_t train_samples = 0;
  std::size_t val_samples = 0;
  std::optional<std::int64_t> resume_epoch;  // the epoch a resumed fold continues at
  std::size_t batches = 0;                   // training batches per epoch (global batches)
};

struct BatchDone {
  int fold = 0;
  std::int64_t epoch = 0;
  std::size_t batch = 0;  // 1-based, of `batches`
  std::size_t batches = 0;
  // Of the epoch so far. Waits for the device: call it only to show the value. It throws
  // NonFiniteLoss (the fold fails) when a batch's loss was not finite: let that pass.
  std::function<double()> mean_loss;
  double images_per_second = 0;
};

// The holdout test part, evaluated once with the fold's best weights.
struct TestDone {
  std::size_t samples = 0;
  std::int64_t best_epoch = 0;
  std::vector<double> metrics;  // in RunStarted::metric_names order
};

// What a run tells while it goes, for the program to show. Every call comes from the thread
// that called run_experiment. A rank other than 0 of a distributed run only reports
// on_rank_joined: rank 0 speaks for the run.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void on_rank_joined(const RankJoined& rank) {}
  virtual void on_run_started(const RunStarted& run) {}
  virtual void on_fold_started(const FoldStarted& fold) {}
  virtual void on_batch_done(const BatchDone& batch) {}
  // After the epoch is recorded in the run file.
  virtual void on_epoch_done(int fold, const HistoryRow& row, const TrainingThroughput& throughput, bool improved) {}
  // A sample skipped because of a data error (recorded in the run file's /skipped).
  virtual void on_sample_skipped(int fold, const SkippedSample& sample) {}
  virtual void on_fold_failed(int fold, const std::string& error) {}
  virtual void on_test_done(int fold, const TestDone& test) {}
};

struct RunOutcome {
  std::string path;   // the run file; empty on a rank other than 0 of a distributed run
  RunStatus status = RunStatus::Running;
  int exit_code = 0;  // 0 complete, 130 interrupted, 1 a fold failed
  // What predicting nothing at all (all background, no boxes) scores, averaged over the
  // validation parts of the folds that finished; empty when none did.
  std::vector<MetricValue> empty_prediction;
};

RunOutcome run_experiment(const RunRequest& request, RunObserver& observer);

// "<YYYYmmdd-HHMMSS>-<config hash>" in UTC.
std::string make_run_id(const std::string& config_hash);

}  // namespace chestlab

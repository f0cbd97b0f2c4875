// TensorBoard event files of a run, written while it trains (train.tensorboard, --tensorboard):
// a RunObserver that writes each report's numbers, then passes the report on. Folders, tags
// and what happens on resume: docs/tensorboard.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/engine/runfile.h"
#include "chestlab/engine/tensorboard.h"
#include "chestlab/host/run_driver.h"

namespace chestlab {

// Where a run's event files go: <folder of the run file>/tb/<run id>/ when the run file is
// <run id>.h5 (<output>/<name>/tb/<run id>/ for `chestlab run` and sweeps), else (a Slurm
// unit's file) <output>/<name>/tb/<run id>/. One folder fold<k>/ per fold below it.
std::string tensorboard_root(const std::string& run_file, const std::string& run_id, const ExperimentConfig& config);

// The scalars of one epoch as chestlab logs them (train/loss, val/loss, val/<metric>,
// train/lr and, when `throughput` is given, train/images_per_second and
// train/data_wait_fraction); at step row.epoch.
std::vector<tensorboard::Scalar> epoch_scalars(const HistoryRow& row, const std::vector<std::string>& metric_names,
                                               const TrainingThroughput* throughput);

class TensorBoardLog final : public RunObserver {
 public:
  // `previous`: the run file as it was before this process (empty for a new run); `every`:
  // batches between the per-batch events (0: none).
  TensorBoardLog(std::string root, std::int64_t every, const RunInfo& previous, RunObserver& next);
  ~TensorBoardLog() override;

  void on_rank_joined(const RankJoined& rank) override { next_.on_rank_joined(rank); }
  void on_run_started(const RunStarted& run) override;
  void on_fold_started(const FoldStarted& fold) override;
  void on_batch_done(const BatchDone& batch) override;
  void on_epoch_done(int fold, const HistoryRow& row, const TrainingThroughput& throughput, bool improved) override;
  void on_sample_skipped(int fold, const SkippedSample& sample) override { next_.on_sample_skipped(fold, sample); }
  void on_fold_failed(int fold, const std::string& error) override { next_.on_fold_failed(fold, error); }
  void on_test_done(int fold, const TestDone& test) override { next_.on_test_done(fold, test); }

 private:
  // Makes fold k's files agree with the run file, which holds epochs [0, next_epoch): drops
  // every event of a later epoch (and any damaged tail), then writes the run file's numbers
  // of any earlier epoch the files lack. `batches` == 0: keep every per-batch event.
  void sync_fold(int k, std::int64_t next_epoch, std::size_t batches);
  tensorboard::EventFileWriter& writer();

  std::string root_;
  std::int64_t every_;
  const RunInfo& previous_;
  RunObserver& next_;
  std::vector<std::string> metric_names_;
  int fold_ = -1;
  std::size_t batches_ = 0;  // per epoch, of the current fold
  std::unique_ptr<tensorboard::EventFileWriter> writer_;  // made at the fold's first event
};

}  // namespace chestlab

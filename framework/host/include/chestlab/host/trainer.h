// Trains one fold: epochs of training and validation, the schedule, best-epoch tracking,
// early stopping, gradient clipping, non-finite-loss and interrupt handling. What to do
// with each finished epoch (record it, keep weights) is the FoldObserver's business; what
// the processes of a data-parallel run agree on in each step is the TrainingSync's. There is
// one training loop: a single process is a TrainingSync of one.
#pragma once

#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"
#include "chestlab/host/experiment.h"
#include "chestlab/host/loader.h"
#include "chestlab/host/per_image.h"

namespace chestlab {

// How fast an epoch trained. Measured, not recorded in the run file.
struct TrainingThroughput {
  double images_per_second = 0;   // of every process together
  double data_wait_fraction = 0;  // share of the training time spent waiting for batches
};

struct FoldResult {
  FoldStatus status = FoldStatus::Complete;  // Complete, StoppedEarly, Interrupted or Failed
  std::string error;                         // for Failed
  std::int64_t best_epoch = -1;
  double best_value = 0;
  std::vector<HistoryRow> history;
  std::vector<SkippedSample> skipped;
};

class FoldObserver {
 public:
  virtual ~FoldObserver() = default;
  // After each completed epoch. `improved`: this epoch is the new best by the monitor;
  // `model` then holds the best weights. `resume` continues the fold after this epoch
  // (its next_epoch and the parts "model", "optimizer", "scheduler").
  virtual void on_epoch_end(int fold, const HistoryRow& row, const TrainingThroughput& throughput, bool improved,
                            const Model& model, const ResumeBlob& resume) = 0;
  // Progress within an epoch, for progress bars. `mean_loss()`, the epoch's so far, waits for
  // the device: call it only when the value is shown. It throws NonFiniteLoss when a batch's
  // loss was not finite; let that pass.
  virtual void on_batch_end(int fold, std::int64_t epoch, std::size_t batch, std::size_t batches,
                            const std::function<double()>& mean_loss, double images_per_second) {}
  // Samples skipped because of data errors (when the dataset's on_error is "skip").
  virtual void on_skipped(int fold, const std::vector<SkippedSample>& skipped) {}
};

struct ResumeState {
  ResumeBlob checkpoint;            // as FoldObserver::on_epoch_end gave it
  std::vector<HistoryRow> history;  // the epochs already recorded
};

// A training step's numbers: one process's own, or summed over every process of a run.
struct StepTotals {
  torch::Tensor loss_sum;  // float64 scalar: the batch's mean loss times its samples; undefined without samples
  double samples = 0;
  bool stop = false;    // an interrupt was requested
};

// What the processes of one data-parallel run must agree on, plugged into the one training
// loop of FoldTrainer. The calls are collectives: every process makes the same calls in the
// same order. A single process trains with the identity (FoldTrainer's default); a rank of
// `chestlab run --distributed` with DistributedSync (chestlab/host/distributed.h).
class TrainingSync {
 public:
  virtual ~TrainingSync() = default;
  virtual int world_size() const = 0;
  // Every process takes part in every step of an epoch, also one without samples in it (the
  // collectives must match). A process alone skips a batch whose every sample was skipped.
  virtual bool lockstep() const = 0;
  // Appended to messages about a step's summed numbers, e.g. " on some rank".
  virtual const char* where() const = 0;

  // Once per fold, after the model is made: every process starts from the same weights.
  virtual void start_fold(torch::nn::Module& model) = 0;
  // This process's samples of an epoch's order. Global batch g is order[g*B, (g+1)*B) with
  // B = world_size * batch_size; cut into batches of batch_size, the result holds this
  // process's slice of every global batch in order.
  virtual std::vector<std::size_t> shard(const std::vector<std::size_t>& order, std::size_t batch_size) = 0;
  virtual StepTotals sum(const StepTotals& mine) = 0;
  // Every process's gradients become the sample-weighted mean over processes,
  // sum_r samples_r * grad_r / total_samples (a process with no samples passes 0).
  virtual void average_gradients(torch::nn::Module& model, double samples, double total_samples) = 0;
  // The validation numbers (val_loss and `metrics` metric values) that `validate` computes
  // where the sync chooses, known to every process.
  virtual HistoryRow validation(torch::nn::Module& model, std::size_t metrics,
                                const std::function<HistoryRow()>& validate) = 0;
  // `flag` of any process, on every process.
  virtual bool any(bool flag) = 0;
};

enum class Precision;  // chestlab/host/src/precision.h
class GradScaler;

class FoldTrainer {
 public:
  // With `sync` (kept alive by the caller), one process of a data-parallel run; without it,
  // a single process.
  // Throws ConfigError when the device cannot train at train.precision.
  FoldTrainer(const Experiment& experiment, int fold, torch::Device device, TrainingSync* sync = nullptr);
  ~FoldTrainer();
  // Trains from scratch, or from `resume` after its last completed epoch.
  FoldResult run(FoldObserver& observer, const std::optional<ResumeState>& resume = std::nullopt);

  // The validation pass alone (used for the holdout test part as well): the row's epoch,
  // val_loss and metrics.
  HistoryRow evaluate(const std::vector<std::size_t>& indices, std::int64_t epoch);
  // The metrics of a prediction that finds nothing (an all-background mask, no boxes) on
  // the same samples: the floor a trained model must clearly beat.
  std::vector<double> empty_prediction_metrics(const std::vector<std::size_t>& indices);
  Model& model() { return *model_; }

 private:
  // False when interrupted before the epoch ended.
  bool train_epoch(std::int64_t epoch, HistoryRow& row, TrainingThroughput& throughput);
  // One optimizer step on this process's `host_batch` (nullopt or empty: no samples here).
  StepTotals train_step(std::optional<Batch>& host_batch);
  void restore(const ResumeBlob& checkpoint);
  ResumeBlob checkpoint(std::int64_t next_epoch) const;
  double scheduled_lr(std::int64_t epoch, std::int64_t step, std::int64_t steps) const;
  LoaderOptions loader_options(std::int64_t epoch, bool training) const;

  const Experiment& experiment_;
  const ExperimentConfig& config_;
  int fold_;
  torch::Device device_;
  TrainingSync* sync_;
  std::shared_ptr<Model> model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::shared_ptr<Loss> loss_;
  std::shared_ptr<Scheduler> scheduler_;
  std::vector<std::shared_ptr<Metric>> metrics_;
  PerImageScorer per_image_;  // HistoryRow::per_image of each evaluation
  FoldObserver* observer_ = nullptr;
  std::vector<SkippedSample> skipped_;
  Precision precision_;
  std::unique_ptr<GradScaler> scaler_;  // fp16 only
};

// Thrown when a training loss is NaN or infinite; the fold fails, the others go on.
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace chestlab

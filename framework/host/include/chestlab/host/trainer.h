// Trains one fold: epochs of training and validation, the schedule, best-epoch tracking,
// early stopping, gradient clipping, non-finite-loss and interrupt handling. What to do
// with each finished epoch (record it, keep weights) is the FoldObserver's business.
#pragma once

#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/host/experiment.h"
#include "chestlab/host/loader.h"

namespace chestlab {

struct EpochRecord {
  std::int64_t epoch = 0;
  double lr = 0;
  double train_loss = 0;
  double val_loss = 0;
  double seconds = 0;
  std::vector<double> metrics;  // in the experiment's metric order
  double images_per_second = 0;  // training throughput of this epoch
  double data_wait_fraction = 0; // share of the training time spent waiting for batches
};

// Everything needed to continue a fold after its last completed epoch. RNG state is not
// part of it: every epoch reseeds LibTorch's generator from (seed, fold, epoch).
struct FoldCheckpoint {
  std::int64_t next_epoch = 0;
  std::string model_state;      // torch::serialize archive bytes
  std::string optimizer_state;  // torch::serialize archive bytes
  std::string scheduler_state;  // Scheduler::save_state()
};

enum class FoldOutcome { Complete, StoppedEarly, Interrupted, Failed };
const char* to_string(FoldOutcome outcome);

struct FoldResult {
  FoldOutcome outcome = FoldOutcome::Complete;
  std::string error;            // for Failed
  std::int64_t best_epoch = -1;
  double best_value = 0;
  std::vector<EpochRecord> history;
  std::vector<SkippedSample> skipped;
};

class FoldObserver {
 public:
  virtual ~FoldObserver() = default;
  // After each completed epoch. `improved`: this epoch is the new best by the monitor;
  // `model` then holds the best weights. `checkpoint` resumes after this epoch.
  virtual void on_epoch_end(int fold, const EpochRecord& record, bool improved, const Model& model,
                            const FoldCheckpoint& checkpoint) = 0;
  // Progress within an epoch, for progress bars.
  virtual void on_batch_end(int fold, std::int64_t epoch, std::size_t batch, std::size_t batches,
                            double loss, double images_per_second) {}
  // Samples skipped because of data errors (when the dataset's on_error is "skip").
  virtual void on_skipped(int fold, const std::vector<SkippedSample>& skipped) {}
};

struct ResumeState {
  FoldCheckpoint checkpoint;
  std::vector<EpochRecord> history;  // the epochs already recorded
};

class DistributedContext;

class FoldTrainer {
 public:
  // With `distributed` (kept alive by the caller), one rank of a data-parallel run
  // (chestlab/host/distributed.h); without it, the plain single-process trainer.
  FoldTrainer(const Experiment& experiment, int fold, torch::Device device,
              DistributedContext* distributed = nullptr);
  // Trains from scratch, or from `resume` after its last completed epoch.
  FoldResult run(FoldObserver& observer, const std::optional<ResumeState>& resume = std::nullopt);

  // The validation pass alone (used for the holdout test part as well).
  EpochRecord evaluate(const std::vector<std::size_t>& indices, std::int64_t epoch);
  // The metrics of a prediction that finds nothing (an all-background mask, no boxes) on
  // the same samples: the floor a trained model must clearly beat.
  std::vector<double> empty_prediction_metrics(const std::vector<std::size_t>& indices);
  Model& model() { return *model_; }

 private:
  // False when interrupted before the epoch ended.
  bool train_epoch(std::int64_t epoch, EpochRecord& record);
  // One rank's share of an epoch of a distributed run (`distributed_` set).
  bool train_epoch_distributed(std::int64_t epoch, EpochRecord& record);
  // Rank 0 validates; every rank gets its numbers. Plain evaluate() without `distributed_`.
  EpochRecord validate(std::int64_t epoch);
  // interrupt_requested() on any rank (a collective in a distributed run).
  bool interrupted_anywhere();
  void restore(const FoldCheckpoint& checkpoint);
  FoldCheckpoint checkpoint(std::int64_t next_epoch) const;
  double scheduled_lr(std::int64_t epoch, std::int64_t step, std::int64_t steps) const;
  LoaderOptions loader_options(std::int64_t epoch, bool training) const;

  const Experiment& experiment_;
  const ExperimentConfig& config_;
  int fold_;
  torch::Device device_;
  std::shared_ptr<Model> model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::shared_ptr<Loss> loss_;
  std::shared_ptr<Scheduler> scheduler_;
  std::vector<std::shared_ptr<Metric>> metrics_;
  FoldObserver* observer_ = nullptr;
  std::vector<SkippedSample> skipped_;
  DistributedContext* distributed_ = nullptr;
};

// Named float32 copies of a module's parameters and buffers (state_dict names).
struct NamedTensor {
  std::string name;
  torch::Tensor value;
};
std::vector<NamedTensor> state_tensors(const torch::nn::Module& module);

// Thrown when a training loss is NaN or infinite; the fold fails, the others go on.
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace chestlab

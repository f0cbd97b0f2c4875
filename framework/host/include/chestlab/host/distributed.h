// Data-parallel training of one run across processes (`chestlab run --distributed`) with
// LibTorch's c10d: Gloo on CPU, NCCL on CUDA where LibTorch was built with it.
//
// Design (docs/distributed.md): every rank holds the same model (rank 0's weights are
// broadcast at the start of a fold), takes its slice of each global batch of the same
// epoch order, and all-reduces the gradients weighted by its sample count before the
// optimizer step, so every rank takes the same step. Validation runs on rank 0 alone and its
// numbers are broadcast, so the monitor, the schedule and early stopping decide the same
// thing everywhere. Only rank 0 writes the run file. DistributedSync plugs this into the one
// training loop of FoldTrainer (chestlab/host/trainer.h).
#pragma once

#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chestlab/host/trainer.h"

namespace chestlab {

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  std::string master_addr;
  int master_port = 0;
  std::string source;  // "RANK/WORLD_SIZE" or "SLURM_PROCID/SLURM_NTASKS", for messages
  // How long each collective waits for the other ranks (`run --distributed-timeout`); zero:
  // Gloo's 30 minutes. Joining keeps the store's 5 minutes: ranks may start far apart (Slurm).
  std::chrono::milliseconds timeout{0};
};

// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; without RANK/WORLD_SIZE, Slurm's SLURM_PROCID and
// SLURM_NTASKS. MASTER_ADDR defaults to 127.0.0.1 (an error under Slurm with more than one
// node), MASTER_PORT to 29500 (under Slurm 29500 + SLURM_JOB_ID % 1000, so that two jobs on
// one node do not collide). Throws ConfigError naming the variable.
DistributedEnv distributed_env_from(const std::function<const char*(const char*)>& getenv_fn);
DistributedEnv distributed_env();

// Failures: a rank that fails (a data error, a plugin error, ...) announces it in the
// rendezvous store before it ends (announce_failure). Every rank watches the store; a rank
// that learns of another's failure throws that failure (same class, so the same exit code,
// message prefixed with the failing rank) at its next collective, or from the collective it
// is waiting in once the failing rank has gone. If it is still stuck a few seconds later
// (a peer that hangs instead of ending), it prints the failure and ends with its exit code.
// So one rank's error ends every rank within seconds, not after the collective timeout.
class DistributedContext {
 public:
  // Joins the process group (blocks until every rank has joined, at most 5 minutes).
  DistributedContext(const DistributedEnv& env, torch::Device device);
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_root() const { return env_.rank == 0; }
  const char* backend() const;

  // In place, over every rank. Tensors on any device (copied through the CPU for Gloo + CUDA).
  void all_reduce_sum(torch::Tensor& tensor);
  void broadcast(torch::Tensor& tensor, int root = 0);
  void barrier();

  // Tells the other ranks that this one fails with `error` (call while it propagates; never
  // throws) and waits a moment for them to read it. Nothing is announced for a failure that
  // came from another rank.
  void announce_failure(const std::exception_ptr& error) noexcept;

 private:
  template <typename F>
  void collective(const char* what, F&& f);
  struct Impl;
  DistributedEnv env_;
  torch::Device device_;
  std::unique_ptr<Impl> impl_;
};

// Replaces every rank's gradients with the sample-weighted mean over ranks:
// sum_r samples_r * grad_r / sum_r samples_r. A rank with no samples this step passes 0 (its
// gradients, undefined or not, count as zeros). One flat all-reduce.
void all_reduce_gradients(DistributedContext& context, torch::nn::Module& model, double samples,
                          double total_samples);
// Rank 0's parameters and buffers (or buffers only) to every rank.
void broadcast_state(DistributedContext& context, torch::nn::Module& model, bool buffers_only);

// This rank's samples of an epoch: global batch g is order[g*B, (g+1)*B) with
// B = world_size * per_rank_batch, and rank r takes its r-th slice of per_rank_batch samples.
// Cut into batches of per_rank_batch, the result holds this rank's slice of every global
// batch in order (the last slice may be short or empty).
std::vector<std::size_t> shard_epoch(const std::vector<std::size_t>& order, std::size_t per_rank_batch, int rank,
                                     int world_size);

// One rank's part in the training loop of a data-parallel run: rank 0's weights at the start
// of a fold, this rank's slice of every global batch, the step's loss, samples and interrupt
// flag summed over ranks in one all-reduce, gradients averaged by samples, validation on rank
// 0 with its numbers broadcast.
class DistributedSync final : public TrainingSync {
 public:
  explicit DistributedSync(DistributedContext& context) : context_(context) {}

  int world_size() const override { return context_.world_size(); }
  bool lockstep() const override { return true; }
  const char* where() const override { return " on some rank"; }
  void start_fold(torch::nn::Module& model) override;
  std::vector<std::size_t> shard(const std::vector<std::size_t>& order, std::size_t batch_size) override;
  StepTotals sum(const StepTotals& mine) override;
  void average_gradients(torch::nn::Module& model, double samples, double total_samples) override;
  HistoryRow validation(torch::nn::Module& model, std::size_t metrics,
                        const std::function<HistoryRow()>& validate) override;
  bool any(bool flag) override;

 private:
  DistributedContext& context_;
};

}  // namespace chestlab

#include "chestlab/host/trainer.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "chestlab/host/distributed.h"
#include "chestlab/host/runtime.h"
#include "chestlab/rng.h"

namespace chestlab {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Seeds LibTorch's generator from (seed, fold, purpose[, epoch]) so that initialisation
// and each epoch's randomness (dropout) depend on nothing else: resume needs no RNG state.
void seed_torch(std::initializer_list<std::uint64_t> parts) {
  torch::manual_seed(mix_seed(parts) >> 1);
}

std::string archive_bytes(const std::function<void(torch::serialize::OutputArchive&)>& save) {
  torch::serialize::OutputArchive archive;
  save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

bool improves(double value, double best, bool maximize, bool have_best) {
  if (std::isnan(value)) return false;
  if (!have_best || std::isnan(best)) return true;
  return maximize ? value > best : value < best;
}

}  // namespace

const char* to_string(FoldOutcome outcome) {
  switch (outcome) {
    case FoldOutcome::Complete: return "complete";
    case FoldOutcome::StoppedEarly: return "stopped_early";
    case FoldOutcome::Interrupted: return "interrupted";
    case FoldOutcome::Failed: return "failed";
  }
  return "?";
}

std::vector<NamedTensor> state_tensors(const torch::nn::Module& module) {
  std::vector<NamedTensor> out;
  for (const auto& p : module.named_parameters(true))
    out.push_back({p.key(), p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous()});
  for (const auto& b : module.named_buffers(true))
    out.push_back({b.key(), b.value().detach().to(torch::kCPU, torch::kFloat32).contiguous()});
  return out;
}

FoldTrainer::FoldTrainer(const Experiment& experiment, int fold, torch::Device device,
                         DistributedContext* distributed)
    : experiment_(experiment), config_(experiment.config()), fold_(fold), device_(device), distributed_(distributed) {
  seed_torch({config_.seed, static_cast<std::uint64_t>(fold), 0x1u});
  model_ = experiment.make_model();
  model_->to(device_);
  optimizer_ = experiment.make_optimizer(*model_);
  loss_ = experiment.make_loss();
  scheduler_ = experiment.make_scheduler();
  metrics_ = experiment.make_metrics();
  // Same seed, same weights on every rank already; the broadcast makes it a guarantee.
  if (distributed_) broadcast_state(*distributed_, *model_, /*buffers_only=*/false);
}

LoaderOptions FoldTrainer::loader_options(std::int64_t epoch, bool training) const {
  LoaderOptions o;
  o.batch_size = static_cast<std::size_t>(config_.train.batch_size);
  o.workers = static_cast<std::size_t>(config_.train.workers);
  o.prefetch = static_cast<std::size_t>(config_.train.prefetch);
  o.shuffle = training;
  o.skip_bad_samples = config_.on_error == "skip";
  o.pin_memory = device_.is_cuda();
  o.seed = config_.seed;
  o.fold = fold_;
  o.epoch = epoch;
  return o;
}

double FoldTrainer::scheduled_lr(std::int64_t epoch, std::int64_t step, std::int64_t steps) const {
  ScheduleState state;
  state.epoch = epoch;
  state.epochs = config_.train.epochs;
  state.step = step;
  state.steps_per_epoch = std::max<std::int64_t>(steps, 1);
  state.base_lr = config_.optimizer.lr;
  double lr = scheduler_->lr(state);
  const std::int64_t warmup = config_.warmup_epochs;
  if (warmup > 0 && epoch < warmup) {
    // Linear warm-up over the first `warmup` epochs, batch by batch.
    const double done = static_cast<double>(epoch * state.steps_per_epoch + step + 1);
    lr *= done / static_cast<double>(warmup * state.steps_per_epoch);
  }
  return lr;
}

FoldCheckpoint FoldTrainer::checkpoint(std::int64_t next_epoch) const {
  FoldCheckpoint c;
  c.next_epoch = next_epoch;
  c.model_state = archive_bytes([&](auto& a) { model_->save(a); });
  c.optimizer_state = archive_bytes([&](auto& a) { optimizer_->save(a); });
  c.scheduler_state = scheduler_->save_state();
  return c;
}

void FoldTrainer::restore(const FoldCheckpoint& c) {
  torch::serialize::InputArchive model_archive, optimizer_archive;
  std::istringstream model_in(c.model_state), optimizer_in(c.optimizer_state);
  model_archive.load_from(model_in, device_);
  model_->load(model_archive);
  optimizer_archive.load_from(optimizer_in, device_);
  optimizer_->load(optimizer_archive);
  scheduler_->load_state(c.scheduler_state);
}

bool FoldTrainer::train_epoch(std::int64_t epoch, EpochRecord& record) {
  if (distributed_) return train_epoch_distributed(epoch, record);
  const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(fold_));
  model_->train();
  BatchLoader loader(experiment_.dataset(), plan.train, &experiment_.augment(), loader_options(epoch, true));
  const auto steps = static_cast<std::int64_t>(loader.batches());
  const bool per_batch = scheduler_->unit() == StepUnit::Batch || epoch < config_.warmup_epochs;
  record.lr = scheduled_lr(epoch, 0, steps);
  set_learning_rate(*optimizer_, record.lr);

  const auto t0 = Clock::now();
  double loss_sum = 0;
  std::int64_t seen = 0;
  std::int64_t step = 0;
  bool completed = true;
  while (auto host_batch = loader.next()) {
    if (host_batch->size() == 0) continue;  // every sample of it was skipped
    if (per_batch) set_learning_rate(*optimizer_, scheduled_lr(epoch, step, steps));
    Batch batch = host_batch->to(device_, /*non_blocking=*/device_.is_cuda());
    optimizer_->zero_grad();
    ModelOutput output = model_->forward(batch.images);
    torch::Tensor loss = loss_->compute(output, batch);
    const double value = loss.item<double>();
    if (!std::isfinite(value))
      throw NonFiniteLoss(fmt::format("loss is {} at epoch {}, batch {} (lr {:.3g}); lower the learning rate "
                                      "or set train.grad_clip",
                                      value, epoch, step, record.lr));
    loss.backward();
    if (config_.train.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model_->parameters(), config_.train.grad_clip);
    optimizer_->step();
    loss_sum += value * static_cast<double>(batch.size());
    seen += batch.size();
    ++step;
    const double elapsed = seconds_since(t0);
    observer_->on_batch_end(fold_, epoch, static_cast<std::size_t>(step), loader.batches(), loss_sum / seen,
                            elapsed > 0 ? seen / elapsed : 0);
    if (interrupt_requested()) {
      completed = false;
      break;
    }
  }
  const double elapsed = seconds_since(t0);
  record.train_loss = seen ? loss_sum / static_cast<double>(seen) : std::nan("");
  record.images_per_second = elapsed > 0 ? static_cast<double>(seen) / elapsed : 0;
  record.data_wait_fraction = elapsed > 0 ? loader.wait_seconds() / elapsed : 0;
  auto skipped = loader.skipped();
  skipped_.insert(skipped_.end(), skipped.begin(), skipped.end());
  if (!skipped.empty()) observer_->on_skipped(fold_, skipped);
  return completed;
}

bool FoldTrainer::train_epoch_distributed(std::int64_t epoch, EpochRecord& record) {
  DistributedContext& dist = *distributed_;
  const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(fold_));
  model_->train();
  // Every rank shuffles the same global order and takes its slice of each global batch.
  LoaderOptions options = loader_options(epoch, true);
  std::vector<std::size_t> mine =
      shard_epoch(BatchLoader::epoch_order(plan.train, options), options.batch_size, dist.rank(), dist.world_size());
  options.shuffle = false;
  BatchLoader loader(experiment_.dataset(), std::move(mine), &experiment_.augment(), options);
  const std::size_t global_batch = options.batch_size * static_cast<std::size_t>(dist.world_size());
  const auto steps = static_cast<std::int64_t>((plan.train.size() + global_batch - 1) / global_batch);
  const bool per_batch = scheduler_->unit() == StepUnit::Batch || epoch < config_.warmup_epochs;
  record.lr = scheduled_lr(epoch, 0, steps);
  set_learning_rate(*optimizer_, record.lr);

  const auto t0 = Clock::now();
  double loss_sum = 0;  // over every rank
  double seen = 0;
  bool completed = true;
  // Every rank takes part in every step, also one whose slice is empty (the last global
  // batch) or was skipped entirely: the collectives must match across ranks.
  for (std::int64_t step = 0; step < steps; ++step) {
    std::optional<Batch> host_batch = loader.next();  // nullopt past this rank's last slice
    const std::int64_t n = host_batch ? host_batch->size() : 0;
    if (per_batch) set_learning_rate(*optimizer_, scheduled_lr(epoch, step, steps));
    optimizer_->zero_grad();
    double value = 0;
    if (n > 0) {
      Batch batch = host_batch->to(device_, /*non_blocking=*/device_.is_cuda());
      ModelOutput output = model_->forward(batch.images);
      torch::Tensor loss = loss_->compute(output, batch);
      value = loss.item<double>();
      if (std::isfinite(value)) loss.backward();
    }
    // [loss * samples, samples, interrupted] summed over ranks, in double precision.
    torch::Tensor stats = torch::tensor({value * static_cast<double>(n), static_cast<double>(n),
                                         interrupt_requested() ? 1.0 : 0.0},
                                        torch::kFloat64);
    dist.all_reduce_sum(stats);
    const double global_sum = stats[0].item<double>(), global_n = stats[1].item<double>();
    if (global_n > 0) {
      if (!std::isfinite(global_sum))
        throw NonFiniteLoss(fmt::format("loss is {} at epoch {}, batch {} (lr {:.3g}) on some rank; lower the "
                                        "learning rate or set train.grad_clip",
                                        global_sum, epoch, step, record.lr));
      all_reduce_gradients(dist, *model_, static_cast<double>(n), global_n);
      if (config_.train.grad_clip > 0)
        torch::nn::utils::clip_grad_norm_(model_->parameters(), config_.train.grad_clip);
      optimizer_->step();
      loss_sum += global_sum;
      seen += global_n;
    }
    const double elapsed = seconds_since(t0);
    observer_->on_batch_end(fold_, epoch, static_cast<std::size_t>(step + 1), static_cast<std::size_t>(steps),
                            seen > 0 ? loss_sum / seen : 0, elapsed > 0 ? seen / elapsed : 0);
    if (stats[2].item<double>() > 0) {
      completed = false;
      break;
    }
  }
  const double elapsed = seconds_since(t0);
  record.train_loss = seen > 0 ? loss_sum / seen : std::nan("");
  record.images_per_second = elapsed > 0 ? seen / elapsed : 0;  // of all ranks together
  record.data_wait_fraction = elapsed > 0 ? loader.wait_seconds() / elapsed : 0;
  auto skipped = loader.skipped();  // this rank's (only rank 0's are recorded)
  skipped_.insert(skipped_.end(), skipped.begin(), skipped.end());
  if (!skipped.empty()) observer_->on_skipped(fold_, skipped);
  return completed;
}

EpochRecord FoldTrainer::validate(std::int64_t epoch) {
  const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(fold_));
  if (!distributed_) return evaluate(plan.val, epoch);
  // Rank 0's running statistics (BatchNorm) everywhere, then rank 0 validates alone and
  // broadcasts [val_loss, metrics...]: every rank then takes the same monitor decision.
  broadcast_state(*distributed_, *model_, /*buffers_only=*/true);
  EpochRecord record;
  record.epoch = epoch;
  if (distributed_->is_root()) record = evaluate(plan.val, epoch);
  torch::Tensor numbers = torch::zeros({static_cast<std::int64_t>(metrics_.size()) + 1}, torch::kFloat64);
  if (distributed_->is_root()) {
    numbers[0] = record.val_loss;
    for (std::size_t i = 0; i < record.metrics.size(); ++i) numbers[static_cast<std::int64_t>(i) + 1] = record.metrics[i];
  }
  distributed_->broadcast(numbers, 0);
  if (!distributed_->is_root()) {
    record.val_loss = numbers[0].item<double>();
    for (std::size_t i = 0; i < metrics_.size(); ++i)
      record.metrics.push_back(numbers[static_cast<std::int64_t>(i) + 1].item<double>());
  }
  return record;
}

bool FoldTrainer::interrupted_anywhere() {
  if (!distributed_) return interrupt_requested();
  torch::Tensor flag = torch::full({1}, interrupt_requested() ? 1.0 : 0.0, torch::kFloat64);
  distributed_->all_reduce_sum(flag);
  return flag.item<double>() > 0;
}

EpochRecord FoldTrainer::evaluate(const std::vector<std::size_t>& indices, std::int64_t epoch) {
  EpochRecord record;
  record.epoch = epoch;
  model_->eval();
  torch::NoGradGuard no_grad;
  BatchLoader loader(experiment_.dataset(), indices, nullptr, loader_options(epoch, false));
  for (auto& m : metrics_) m->reset();
  double loss_sum = 0;
  std::int64_t seen = 0;
  while (auto host_batch = loader.next()) {
    if (host_batch->size() == 0) continue;
    Batch batch = host_batch->to(device_, device_.is_cuda());
    ModelOutput output = model_->forward(batch.images);
    loss_sum += loss_->compute(output, batch).item<double>() * static_cast<double>(batch.size());
    seen += batch.size();
    Prediction prediction = model_->predict(output);
    if (prediction.mask_prob.defined()) prediction.mask_prob = prediction.mask_prob.to(torch::kCPU);
    if (prediction.image_prob.defined()) prediction.image_prob = prediction.image_prob.to(torch::kCPU);
    for (auto& b : prediction.boxes) b = b.to(torch::kCPU);
    for (auto& m : metrics_) m->update(prediction, *host_batch);
  }
  record.val_loss = seen ? loss_sum / static_cast<double>(seen) : std::nan("");
  for (auto& m : metrics_) record.metrics.push_back(m->compute());
  return record;
}

std::vector<double> FoldTrainer::empty_prediction_metrics(const std::vector<std::size_t>& indices) {
  BatchLoader loader(experiment_.dataset(), indices, nullptr, loader_options(0, false));
  for (auto& m : metrics_) m->reset();
  while (auto batch = loader.next()) {
    if (batch->size() == 0) continue;
    Prediction nothing;
    nothing.mask_prob = torch::zeros_like(batch->images);
    nothing.boxes.assign(static_cast<std::size_t>(batch->size()), torch::zeros({0, 5}));
    for (auto& m : metrics_) m->update(nothing, *batch);
  }
  std::vector<double> values;
  for (auto& m : metrics_) values.push_back(m->compute());
  return values;
}

FoldResult FoldTrainer::run(FoldObserver& observer, const std::optional<ResumeState>& resume) {
  observer_ = &observer;
  FoldResult result;
  const std::size_t monitor = experiment_.monitor_index();
  const bool maximize = config_.metrics.at(monitor).maximize;
  std::int64_t start = 0;
  if (resume) {
    restore(resume->checkpoint);
    start = resume->checkpoint.next_epoch;
    result.history = resume->history;
    for (const auto& r : result.history) {
      if (improves(r.metrics.at(monitor), result.best_value, maximize, result.best_epoch >= 0)) {
        result.best_value = r.metrics.at(monitor);
        result.best_epoch = r.epoch;
      }
    }
  }
  try {
    for (std::int64_t epoch = start; epoch < config_.train.epochs; ++epoch) {
      if (config_.train.early_stopping > 0 && result.best_epoch >= 0 &&
          epoch - 1 - result.best_epoch >= config_.train.early_stopping) {
        result.outcome = FoldOutcome::StoppedEarly;
        break;
      }
      seed_torch({config_.seed, static_cast<std::uint64_t>(fold_), 0x2u, static_cast<std::uint64_t>(epoch)});
      const auto t0 = Clock::now();
      EpochRecord record;
      if (!train_epoch(epoch, record)) {
        result.outcome = FoldOutcome::Interrupted;
        break;
      }
      EpochRecord validation = validate(epoch);
      record.epoch = epoch;
      record.val_loss = validation.val_loss;
      record.metrics = validation.metrics;
      record.seconds = seconds_since(t0);
      const double monitored = record.metrics.at(monitor);
      const bool improved = improves(monitored, result.best_value, maximize, result.best_epoch >= 0);
      if (improved) {
        result.best_value = monitored;
        result.best_epoch = epoch;
      }
      scheduler_->observe(epoch, monitored);
      result.history.push_back(record);
      observer.on_epoch_end(fold_, record, improved, *model_, checkpoint(epoch + 1));
      if (interrupted_anywhere()) {
        result.outcome = epoch + 1 < config_.train.epochs ? FoldOutcome::Interrupted : FoldOutcome::Complete;
        break;
      }
    }
  } catch (const NonFiniteLoss& e) {
    result.outcome = FoldOutcome::Failed;
    result.error = e.what();
  }
  result.skipped = skipped_;
  return result;
}

}  // namespace chestlab

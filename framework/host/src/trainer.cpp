#include "chestlab/host/trainer.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "chestlab/host/plugin_guard.h"
#include "chestlab/host/runtime.h"
#include "chestlab/rng.h"
#include "precision.h"

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

// The parts of a fold's ResumeBlob.
constexpr const char* kModelPart = "model";          // torch::serialize archive bytes
constexpr const char* kOptimizerPart = "optimizer";  // torch::serialize archive bytes
constexpr const char* kSchedulerPart = "scheduler";  // Scheduler::save_state()
constexpr const char* kScalerPart = "grad_scaler";   // fp16: torch::serialize archive bytes

// Scalar tensors (batch losses), each on the device that computed it, summed only when the
// total is needed: then they come to the host in one copy and are added there in batch
// order in double precision, the numbers a loop reading every batch's loss would give,
// without making the host wait for the device at every batch.
class DeferredSum {
 public:
  void add(const torch::Tensor& value, std::int64_t batch) {
    pending_.push_back(value.reshape({1}));
    batches_.push_back(batch);
  }
  // The total so far; `inspect(batch, value)` sees each value before it is added, and may throw.
  double total(const std::function<void(std::int64_t, double)>& inspect = nullptr) {
    if (pending_.empty()) return total_;
    const torch::Tensor values = torch::cat(pending_).to(torch::kCPU, torch::kFloat64).contiguous();
    const std::vector<std::int64_t> batches = std::move(batches_);
    pending_.clear();
    batches_.clear();
    const double* value = values.data_ptr<double>();
    for (std::size_t i = 0; i < batches.size(); ++i) {
      if (inspect) inspect(batches[i], value[i]);
      total_ += value[i];
    }
    return total_;
  }

 private:
  std::vector<torch::Tensor> pending_;
  std::vector<std::int64_t> batches_;
  double total_ = 0;
};

// torch::nn::utils::clip_grad_norm_'s arithmetic (the 2-norm of the gradients' 2-norms, and
// the gradients times min(1, max_norm / (norm + 1e-6))) without its return value: LibTorch's
// C++ version reads the norm back to the host, so waits for the device at every step.
void clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  for (const auto& g : grads) norms.push_back(g.data().norm(2.0));
  const torch::Tensor total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2.0);
  const torch::Tensor factor = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
  for (auto& g : grads) g.data().mul_(factor);
}

// A prediction's tensor for the metrics, which read fp32 on the CPU: bf16 and fp16 outputs
// of autocast are widened (exactly).
torch::Tensor for_metrics(const torch::Tensor& t) {
  const bool reduced = t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf;
  return reduced ? t.to(torch::kCPU, torch::kFloat32) : t.to(torch::kCPU);
}

// A process training alone: nothing to agree on with anyone.
class SingleProcess final : public TrainingSync {
 public:
  int world_size() const override { return 1; }
  bool lockstep() const override { return false; }
  const char* where() const override { return ""; }
  void start_fold(torch::nn::Module&) override {}
  std::vector<std::size_t> shard(const std::vector<std::size_t>& order, std::size_t) override { return order; }
  StepTotals sum(const StepTotals& mine) override { return mine; }
  void average_gradients(torch::nn::Module&, double, double) override {}
  HistoryRow validation(torch::nn::Module&, std::size_t, const std::function<HistoryRow()>& validate) override {
    return validate();
  }
  bool any(bool flag) override { return flag; }
};

ModelOutput guarded_forward(Model& model, const std::string& name, const torch::Tensor& images) {
  return plugin_call(Kind::Model, name, "forward", [&] { return model.forward(images); });
}

TrainingSync& single_process() {
  static SingleProcess alone;  // stateless
  return alone;
}

}  // namespace

FoldTrainer::FoldTrainer(const Experiment& experiment, int fold, torch::Device device, TrainingSync* sync)
    : experiment_(experiment), config_(experiment.config()), fold_(fold), device_(device),
      sync_(sync ? sync : &single_process()), per_image_(experiment) {
  precision_ = precision_on(config_.train.precision, device_);
  if (precision_ == Precision::Fp16) scaler_ = std::make_unique<GradScaler>(device_);
  seed_torch({config_.training_seed(), static_cast<std::uint64_t>(fold), 0x1u});
  model_ = experiment.make_model();
  model_->to(device_);
  optimizer_ = experiment.make_optimizer(*model_);
  loss_ = experiment.make_loss();
  scheduler_ = experiment.make_scheduler();
  metrics_ = experiment.make_metrics();
  sync_->start_fold(*model_);
}

FoldTrainer::~FoldTrainer() = default;

LoaderOptions FoldTrainer::loader_options(std::int64_t epoch, bool training) const {
  LoaderOptions o;
  o.batch_size = static_cast<std::size_t>(config_.train.batch_size);
  o.workers = static_cast<std::size_t>(config_.train.workers);
  o.prefetch = static_cast<std::size_t>(config_.train.prefetch);
  o.shuffle = training;
  o.skip_bad_samples = config_.on_error == "skip";
  o.pin_memory = device_.is_cuda();
  o.seed = config_.training_seed();
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

ResumeBlob FoldTrainer::checkpoint(std::int64_t next_epoch) const {
  ResumeBlob c;
  c.next_epoch = next_epoch;
  c.parts[kModelPart] = archive_bytes([&](auto& a) { model_->save(a); });
  c.parts[kOptimizerPart] = archive_bytes([&](auto& a) { optimizer_->save(a); });
  c.parts[kSchedulerPart] = scheduler_->save_state();
  if (scaler_) c.parts[kScalerPart] = archive_bytes([&](auto& a) { scaler_->save(a); });
  return c;
}

void FoldTrainer::restore(const ResumeBlob& c) {
  torch::serialize::InputArchive model_archive, optimizer_archive;
  std::istringstream model_in(c.parts.at(kModelPart)), optimizer_in(c.parts.at(kOptimizerPart));
  model_archive.load_from(model_in, device_);
  model_->load(model_archive);
  optimizer_archive.load_from(optimizer_in, device_);
  optimizer_->load(optimizer_archive);
  scheduler_->load_state(c.parts.at(kSchedulerPart));
  if (scaler_ && c.parts.count(kScalerPart)) {
    torch::serialize::InputArchive scaler_archive;
    std::istringstream scaler_in(c.parts.at(kScalerPart));
    scaler_archive.load_from(scaler_in, device_);
    scaler_->load(scaler_archive);
  }
}

bool FoldTrainer::train_epoch(std::int64_t epoch, HistoryRow& row, TrainingThroughput& throughput) {
  const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(fold_));
  model_->train();
  // Every process shuffles the same order and takes its slice of each global batch.
  LoaderOptions options = loader_options(epoch, true);
  std::vector<std::size_t> mine = sync_->shard(BatchLoader::epoch_order(plan.train, options), options.batch_size);
  options.shuffle = false;  // in epoch order already
  BatchLoader loader(experiment_.dataset(), std::move(mine), &experiment_.augment(), options);
  const std::size_t global_batch = options.batch_size * static_cast<std::size_t>(sync_->world_size());
  const auto batches = static_cast<std::int64_t>((plan.train.size() + global_batch - 1) / global_batch);
  const bool per_batch = scheduler_->unit() == StepUnit::Batch || epoch < config_.warmup_epochs;
  row.lr = scheduled_lr(epoch, 0, batches);
  set_learning_rate(*optimizer_, row.lr);

  const auto t0 = Clock::now();
  DeferredSum loss_sum;  // over every process
  double seen = 0;
  std::int64_t step = 0;  // steps taken: the schedule's position in the epoch
  bool completed = true;
  // The first batch whose loss is not finite fails the fold, found where the losses are read.
  const auto fail_if_not_finite = [&](std::int64_t batch, double value) {
    if (!std::isfinite(value))
      throw NonFiniteLoss(fmt::format("loss is {} at epoch {}, batch {} (lr {:.3g}){}; lower the learning rate or "
                                      "set train.grad_clip",
                                      value, epoch, batch, row.lr, sync_->where()));
  };
  const std::function<double()> mean_loss = [&] {
    const double sum = loss_sum.total(fail_if_not_finite);
    return seen > 0 ? sum / seen : 0;
  };
  try {
    for (std::int64_t b = 0; b < batches; ++b) {
      std::optional<Batch> host_batch = loader.next();  // nullopt past this process's last slice
      const bool no_samples = !host_batch || host_batch->size() == 0;  // every sample of it was skipped
      if (no_samples && !sync_->lockstep()) continue;
      if (per_batch) set_learning_rate(*optimizer_, scheduled_lr(epoch, step, batches));
      const StepTotals totals = train_step(host_batch);
      if (totals.samples > 0) loss_sum.add(totals.loss_sum, step);
      seen += totals.samples;
      ++step;
      // Processes in lockstep must fail at the same batch, whoever reads: each checks every
      // batch, whose sum came to the host for the agreement anyway.
      if (sync_->lockstep()) loss_sum.total(fail_if_not_finite);
      const double elapsed = seconds_since(t0);
      observer_->on_batch_end(fold_, epoch, static_cast<std::size_t>(step), static_cast<std::size_t>(batches),
                              mean_loss, elapsed > 0 ? seen / elapsed : 0);
      if (totals.stop) {
        completed = false;
        break;
      }
    }
  } catch (const NonFiniteLoss&) {
    throw;
  } catch (...) {
    // The steps after a non-finite loss train on the NaN weights it left, which a model or a
    // loss may refuse: that loss is the cause to report.
    loss_sum.total(fail_if_not_finite);
    throw;
  }
  // Also for an interrupted epoch: a non-finite loss before the interrupt fails the fold.
  const double sum = loss_sum.total(fail_if_not_finite);
  const double elapsed = seconds_since(t0);
  row.train_loss = seen > 0 ? sum / seen : std::nan("");
  throughput.images_per_second = elapsed > 0 ? seen / elapsed : 0;
  throughput.data_wait_fraction = elapsed > 0 ? loader.wait_seconds() / elapsed : 0;
  auto skipped = loader.skipped();  // this process's (a distributed run records rank 0's)
  skipped_.insert(skipped_.end(), skipped.begin(), skipped.end());
  if (!skipped.empty()) observer_->on_skipped(fold_, skipped);
  return completed;
}

StepTotals FoldTrainer::train_step(std::optional<Batch>& host_batch) {
  StepTotals mine;
  optimizer_->zero_grad();
  if (host_batch && host_batch->size() > 0) {
    Batch batch = host_batch->to(device_, /*non_blocking=*/device_.is_cuda());
    torch::Tensor loss;
    {
      AutocastScope autocast(precision_, device_);  // forward and loss; backward follows the casts it recorded
      ModelOutput output = guarded_forward(*model_, config_.model.plugin, batch.images);
      loss = loss_->compute(output, batch);
    }
    // A non-finite loss fails the fold where the epoch's losses are read (train_epoch); the
    // steps until then do no harm to weights nobody keeps.
    (scaler_ ? scaler_->scale(loss) : loss).backward();
    mine.samples = static_cast<double>(batch.size());
    mine.loss_sum = loss.detach().to(torch::kFloat64) * mine.samples;
  }
  mine.stop = interrupt_requested();
  const StepTotals all = sync_->sum(mine);
  if (all.samples > 0) {
    sync_->average_gradients(*model_, mine.samples, all.samples);
    // fp16: the same averaged gradients on every process, hence the same decision to step.
    const bool finite = !scaler_ || scaler_->unscale(model_->parameters());
    if (config_.train.grad_clip > 0) clip_gradient_norm(model_->parameters(), config_.train.grad_clip);
    if (finite) optimizer_->step();
    if (scaler_) scaler_->update();
  }
  return all;
}

HistoryRow FoldTrainer::evaluate(const std::vector<std::size_t>& indices, std::int64_t epoch) {
  HistoryRow record;
  record.epoch = epoch;
  model_->eval();
  torch::NoGradGuard no_grad;
  BatchLoader loader(experiment_.dataset(), indices, nullptr, loader_options(epoch, false));
  for (auto& m : metrics_) m->reset();
  per_image_.reset();
  DeferredSum loss_sum;
  std::int64_t seen = 0;
  while (auto host_batch = loader.next()) {
    if (host_batch->size() == 0) continue;
    Batch batch = host_batch->to(device_, device_.is_cuda());
    std::optional<ModelOutput> output;
    {
      AutocastScope autocast(precision_, device_);
      output = guarded_forward(*model_, config_.model.plugin, batch.images);
      loss_sum.add(loss_->compute(*output, batch).to(torch::kFloat64) * static_cast<double>(batch.size()), seen);
    }
    seen += batch.size();
    Prediction prediction =
        plugin_call(Kind::Model, config_.model.plugin, "predict", [&] { return model_->predict(*output); });
    if (prediction.mask_prob.defined()) prediction.mask_prob = for_metrics(prediction.mask_prob);
    if (prediction.image_prob.defined()) prediction.image_prob = for_metrics(prediction.image_prob);
    for (auto& b : prediction.boxes) b = for_metrics(b);
    for (auto& m : metrics_) m->update(prediction, *host_batch);
    per_image_.add(prediction, *host_batch);
  }
  record.val_loss = seen ? loss_sum.total() / static_cast<double>(seen) : std::nan("");
  for (auto& m : metrics_) record.metrics.push_back(m->compute());
  record.per_image = per_image_.scores();
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
  const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(fold_));
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
        result.status = FoldStatus::StoppedEarly;
        break;
      }
      seed_torch({config_.training_seed(), static_cast<std::uint64_t>(fold_), 0x2u, static_cast<std::uint64_t>(epoch)});
      const auto t0 = Clock::now();
      HistoryRow record;
      TrainingThroughput throughput;
      if (!train_epoch(epoch, record, throughput)) {
        result.status = FoldStatus::Interrupted;
        break;
      }
      const HistoryRow validation =
          sync_->validation(*model_, metrics_.size(), [&] { return evaluate(plan.val, epoch); });
      record.epoch = epoch;
      record.val_loss = validation.val_loss;
      record.metrics = validation.metrics;
      record.per_image = validation.per_image;  // rank 0's alone in a distributed run; only it records
      record.seconds = seconds_since(t0);
      const double monitored = record.metrics.at(monitor);
      const bool improved = improves(monitored, result.best_value, maximize, result.best_epoch >= 0);
      if (improved) {
        result.best_value = monitored;
        result.best_epoch = epoch;
      }
      scheduler_->observe(epoch, monitored);
      result.history.push_back(record);
      observer.on_epoch_end(fold_, record, throughput, improved, *model_, checkpoint(epoch + 1));
      if (sync_->any(interrupt_requested())) {
        result.status = epoch + 1 < config_.train.epochs ? FoldStatus::Interrupted : FoldStatus::Complete;
        break;
      }
    }
  } catch (const NonFiniteLoss& e) {
    result.status = FoldStatus::Failed;
    result.error = e.what();
  }
  result.skipped = skipped_;
  return result;
}

}  // namespace chestlab

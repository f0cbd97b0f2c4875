#include "chestlab/host/run_driver.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "chestlab/engine/config.h"
#include "chestlab/engine/project_info.h"
#include "chestlab/errors.h"
#include "chestlab/host/distributed.h"
#include "chestlab/host/experiment.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/host/tensorboard_log.h"
#include "chestlab/host/trainer.h"
#include "chestlab/host/weights.h"
#include "precision.h"

namespace fs = std::filesystem;

namespace chestlab {

namespace {

std::vector<std::string> ids_of(const Experiment& exp, const std::vector<std::size_t>& indices) {
  std::vector<std::string> ids;
  ids.reserve(indices.size());
  for (auto i : indices) ids.push_back(exp.samples()[i].id);
  return ids;
}

// Records each finished epoch in the run file, in one atomic transaction per epoch, then
// tells the run's observer.
class RunRecorder : public FoldObserver {
 public:
  RunRecorder(RunFile& file, const Experiment& exp, RunObserver& observer)
      : file_(file), exp_(exp), observer_(observer) {}

  void on_epoch_end(int fold, const HistoryRow& row, const TrainingThroughput& throughput, bool improved,
                    const Model& model, const ResumeBlob& resume) override {
    std::vector<NamedArray> best;
    if (improved) best = weight_arrays(model);
    const double monitored = row.metrics.at(exp_.monitor_index());
    file_.transaction([&](RunWriter& w) {
      w.append_epoch(fold, row);
      if (improved) {
        w.set_fold_best(fold, row.epoch, monitored, best);
        w.set_fold_per_image(fold, row.epoch, row.per_image);
      }
      w.set_fold_resume(fold, resume);
      for (const auto& s : pending_skipped_) w.add_skipped(s.id, s.file, s.reason);
    });
    pending_skipped_.clear();
    observer_.on_epoch_done(fold, row, throughput, improved);
  }
  void on_batch_end(int fold, std::int64_t epoch, std::size_t batch, std::size_t batches,
                    const std::function<double()>& mean_loss, double ips) override {
    observer_.on_batch_done(BatchDone{fold, epoch, batch, batches, mean_loss, ips});
  }
  // Recorded with the next epoch: an epoch that does not complete leaves no trace.
  void on_skipped(int fold, const std::vector<SkippedSample>& skipped) override {
    for (const auto& s : skipped) {
      observer_.on_sample_skipped(fold, s);
      pending_skipped_.push_back(s);
    }
  }

 private:
  RunFile& file_;
  const Experiment& exp_;
  RunObserver& observer_;
  std::vector<SkippedSample> pending_skipped_;
};

// A rank other than 0 of a distributed run: trains along, records nothing.
class SilentObserver : public FoldObserver {
 public:
  void on_epoch_end(int, const HistoryRow&, const TrainingThroughput&, bool, const Model&,
                    const ResumeBlob&) override {}
};

int exit_code_for(RunStatus status) {
  return status == RunStatus::Interrupted ? 130 : status == RunStatus::Failed ? 1 : 0;
}

Environment describe_environment(const PluginRegistry& registry, const torch::Device& device, int threads,
                                 const ExperimentConfig& config) {
  Environment env;
  env.libtorch_version = TORCH_VERSION;
  env.device = device.str();
  env.threads = threads;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  env.hostname = host;
  env.git_commit = project_git_commit();
  env.experiment_file = config.source_file;
  env.base_dir = config.base_dir;
  std::map<std::string, std::string> digests;
  for (const auto& [file, digest] : registry.libraries()) digests[file] = digest;
  for (const auto& c : registry.components())
    env.plugins.push_back({c.info.name, to_string(c.info.kind), c.info.version, c.file, digests[c.file]});
  return env;
}

// A resumed run re-reads the configuration it recorded; `file` and `previous` become the
// run file and what it holds.
ExperimentConfig recorded_config(const RunRequest& request, const PluginRegistry& registry,
                                 std::optional<RunFile>& file, RunInfo& previous) {
  file = RunFile::open(request.resume);
  previous = file->read(LoadWeights::No);
  ExperimentConfig config = parse_experiment(previous.config_toml, request.resume + ":/config",
                                             previous.environment.base_dir, {}, registry);
  // One process would go on with the per-rank batch, i.e. another global batch.
  if (previous.environment.world_size > 1)
    throw ConfigError(fmt::format("{} was trained by {} processes (run --distributed), and resuming a distributed "
                                  "run is not supported yet: start it again",
                                  request.resume, previous.environment.world_size));
  return config;
}

// A new run reads the experiment file or the given configuration text.
ExperimentConfig load_config(const RunRequest& request, const PluginRegistry& registry, std::optional<RunFile>& file,
                             RunInfo& previous) {
  if (!request.resume.empty()) return recorded_config(request, registry, file, previous);
  if (!request.config_toml.empty())
    return parse_experiment(request.config_toml, request.config_source, request.base_dir, request.overrides,
                            registry);
  return load_experiment(request.experiment_file, request.overrides, registry);
}

std::unique_ptr<DistributedContext> join_distributed(const ExperimentConfig& config, torch::Device device,
                                                     std::chrono::milliseconds timeout, RunObserver& observer) {
  DistributedEnv env = distributed_env();
  env.timeout = timeout;
  auto context = std::make_unique<DistributedContext>(env, device);
  observer.on_rank_joined(RankJoined{env.rank, env.world_size, context->backend(), env.source, device.str(),
                                     env.master_addr, env.master_port, config.train.batch_size});
  return context;
}

// A rank other than 0: the same folds and collectives as rank 0, which records everything.
RunOutcome train_along(const Experiment& experiment, torch::Device device, TrainingSync& sync) {
  SilentObserver silent;
  RunOutcome outcome;
  outcome.status = RunStatus::Complete;
  for (int k : experiment.folds_to_run()) {
    FoldTrainer trainer(experiment, k, device, &sync);
    const FoldResult result = trainer.run(silent);
    if (result.status == FoldStatus::Failed) outcome.status = RunStatus::Failed;
    if (result.status == FoldStatus::Interrupted) {
      outcome.status = RunStatus::Interrupted;
      break;
    }
  }
  outcome.exit_code = exit_code_for(outcome.status);
  return outcome;
}

RunFile create_run_file(const RunRequest& request, const ExperimentConfig& config, const std::string& run_id,
                        const PluginRegistry& registry, torch::Device device, int threads, int world_size) {
  RunMeta meta{config.name, run_id, config.hash(), static_cast<std::int64_t>(config.seed),
               config.monitor().name, config.monitor().maximize ? MonitorMode::Max : MonitorMode::Min,
               config.cv.repeats > 1 ? config.cv.folds : 0};
  Environment environment = describe_environment(registry, device, threads, config);
  environment.world_size = world_size;
  const std::string path = request.run_path.empty()
                               ? (fs::path(config.output) / config.name / (run_id + ".h5")).string()
                               : request.run_path;
  return RunFile::create(path, meta, config.resolved_toml(), environment);
}

std::vector<MetricValue> mean_per_metric(const std::vector<std::string>& names,
                                         const std::vector<std::vector<double>>& per_fold) {
  std::vector<MetricValue> means;
  if (per_fold.empty()) return means;
  for (std::size_t m = 0; m < names.size(); ++m) {
    double sum = 0;
    for (const auto& fold : per_fold) sum += fold[m];
    means.push_back({names[m], sum / static_cast<double>(per_fold.size())});
  }
  return means;
}

// Rank 0 or a single process: trains the folds, recording them in the run file.
class RecordingRun {
 public:
  RecordingRun(const Experiment& experiment, RunFile& file, const RunInfo& previous, torch::Device device,
                   TrainingSync* sync, RunObserver& observer)
      : experiment_(experiment), file_(file), previous_(previous), device_(device), sync_(sync),
        observer_(observer), recorder_(file, experiment, observer) {}

  RunOutcome run() {
    check_recorded_folds();
    for (int k : experiment_.folds_to_run()) {
      const FoldStatus status = train_fold(k);
      failed_ = failed_ || status == FoldStatus::Failed;
      if (status == FoldStatus::Interrupted) {
        interrupted_ = true;
        break;
      }
    }
    return finish();
  }

 private:
  // The fold's status at the end (Complete, also for a fold finished before a resume).
  FoldStatus train_fold(int k) {
    const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(k));
    if (const FoldInfo* done = previous_.fold(k); done && is_finished(done->status))
      return FoldStatus::Complete;  // nothing left to do for this fold
    const std::optional<ResumeState> resume = begin_fold(plan);
    const std::size_t global_batch = static_cast<std::size_t>(experiment_.config().train.batch_size) *
                                     static_cast<std::size_t>(sync_ ? sync_->world_size() : 1);
    observer_.on_fold_started(FoldStarted{k, plan.train.size(), plan.val.size(),
                                          resume ? std::optional(resume->checkpoint.next_epoch) : std::nullopt,
                                          (plan.train.size() + global_batch - 1) / global_batch});
    FoldTrainer trainer(experiment_, k, device_, sync_);
    const FoldResult result = trainer.run(recorder_, resume);
    if (is_finished(result.status)) empty_prediction_.push_back(trainer.empty_prediction_metrics(plan.val));
    file_.transaction([&](RunWriter& w) { w.set_fold_status(k, result.status, result.error); });
    if (result.status == FoldStatus::Failed) observer_.on_fold_failed(k, result.error);
    if (result.status != FoldStatus::Interrupted && !plan.test.empty() && result.best_epoch >= 0)
      test_best_weights(trainer, plan, result.best_epoch);
    return result.status;
  }

  // A resumed run continues on the folds it recorded. They are made again from the recorded
  // configuration; a split file edited, or a dataset changed, since the run started would
  // make other folds, and mixing them would compare folds of different splits.
  void check_recorded_folds() const {
    for (int k : experiment_.folds_to_run()) {
      const FoldInfo* done = previous_.fold(k);
      if (!done) continue;
      const FoldPlan& plan = experiment_.plans().at(static_cast<std::size_t>(k));
      if (done->train_ids == ids_of(experiment_, plan.train) && done->val_ids == ids_of(experiment_, plan.val))
        continue;
      const std::string source =
          experiment_.config().cv.splits.empty() ? "the dataset" : "the split file " + experiment_.config().splits_path();
      throw DataError(file_.path(),
                      fmt::format("fold {} was recorded with {} training and {} validation samples, but its folds made "
                                  "now differ ({} and {}): {} changed since the run started; start a new run",
                                  k, done->train_ids.size(), done->val_ids.size(), plan.train.size(), plan.val.size(),
                                  source));
    }
  }

  // Starts the fold's record, or continues it from its last completed epoch.
  std::optional<ResumeState> begin_fold(const FoldPlan& plan) {
    const int k = plan.fold;
    std::optional<ResumeState> resume;
    if (const FoldInfo* done = previous_.fold(k)) {
      if (auto blob = read_fold_resume(file_.path(), k))
        resume = ResumeState{std::move(*blob), done->history};
      else
        file_.transaction([&](RunWriter& w) { w.remove_fold(k); });  // failed before its first epoch
    }
    if (resume) {
      file_.transaction([&](RunWriter& w) { w.set_fold_status(k, FoldStatus::Running); });
    } else {
      file_.transaction([&](RunWriter& w) {
        w.begin_fold(k, experiment_.metric_names(), ids_of(experiment_, plan.train), ids_of(experiment_, plan.val));
      });
    }
    return resume;
  }

  // The holdout test part, once, with the best epoch's weights as recorded.
  void test_best_weights(FoldTrainer& trainer, const FoldPlan& plan, std::int64_t best_epoch) {
    const RunInfo now = file_.read(LoadWeights::Yes);
    load_best_weights(trainer.model(), *now.fold(plan.fold));
    const HistoryRow test = trainer.evaluate(plan.test, best_epoch);
    std::vector<MetricValue> values;
    for (std::size_t i = 0; i < test.metrics.size(); ++i)
      values.push_back({experiment_.metric_names()[i], test.metrics[i]});
    values.push_back({"loss", test.val_loss});
    file_.transaction([&](RunWriter& w) {
      w.write_test(values);
      w.write_test_per_image(test.per_image);
    });
    observer_.on_test_done(plan.fold, TestDone{plan.test.size(), best_epoch, test.metrics});
  }

  RunOutcome finish() {
    RunOutcome outcome;
    outcome.path = file_.path();
    outcome.status = interrupted_ ? RunStatus::Interrupted : failed_ ? RunStatus::Failed : RunStatus::Complete;
    outcome.exit_code = exit_code_for(outcome.status);
    file_.transaction([&](RunWriter& w) {
      w.write_summary();
      w.set_status(outcome.status);
      if (!interrupted_) w.set_finished_now();
    });
    outcome.empty_prediction = mean_per_metric(experiment_.metric_names(), empty_prediction_);
    return outcome;
  }

  const Experiment& experiment_;
  RunFile& file_;
  const RunInfo& previous_;
  torch::Device device_;
  TrainingSync* sync_;
  RunObserver& observer_;
  RunRecorder recorder_;
  bool interrupted_ = false, failed_ = false;
  std::vector<std::vector<double>> empty_prediction_;  // per finished fold: metrics of an empty prediction
};

}  // namespace

std::string make_run_id(const std::string& config_hash) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return std::string(stamp) + "-" + config_hash.substr(0, 8);
}

RunOutcome run_experiment(const RunRequest& request, RunObserver& observer) {
  install_interrupt_handlers();
  if (!request.registry) throw std::invalid_argument("run_experiment: RunRequest::registry is not set");
  const std::shared_ptr<const PluginRegistry> registry = request.registry;
  std::optional<RunFile> file;
  RunInfo previous;
  const ExperimentConfig config = load_config(request, *registry, file, previous);
  const torch::Device device = choose_device(config.train.device);
  precision_on(config.train.precision, device);  // refused before a run file exists
  const int threads = configure_threads(config.train.threads);
  configure_determinism(config.train.deterministic);

  std::unique_ptr<DistributedContext> distributed;
  std::optional<DistributedSync> sync;
  if (request.distributed) {
    if (file) throw ConfigError("--distributed cannot --resume yet: start the run again");
    distributed = join_distributed(config, device, request.distributed_timeout, observer);
    sync.emplace(*distributed);
  }
  TrainingSync* const training_sync = sync ? &*sync : nullptr;

  const auto train = [&]() -> RunOutcome {
    Experiment experiment(config, registry);
    if (distributed && !distributed->is_root()) return train_along(experiment, device, *sync);
    const std::string run_id = file                    ? previous.meta.run_id
                               : request.run_id.empty() ? make_run_id(config.hash())
                                                        : request.run_id;
    if (file)
      file->transaction([](RunWriter& w) { w.set_status(RunStatus::Running); });
    else
      file = create_run_file(request, config, run_id, *registry, device, threads,
                             distributed ? distributed->world_size() : 1);
    // The event files are written beside the run file, by the process that writes it.
    std::optional<TensorBoardLog> tensorboard;
    if (config.train.tensorboard || request.tensorboard)
      tensorboard.emplace(tensorboard_root(file->path(), run_id, config), config.train.tensorboard_every, previous,
                          observer);
    RunObserver& reporter = tensorboard ? static_cast<RunObserver&>(*tensorboard) : observer;
    reporter.on_run_started(RunStarted{file->path(), experiment.samples().size(), device.str(), threads,
                                       experiment.metric_names(), config.train.epochs});
    return RecordingRun(experiment, *file, previous, device, training_sync, reporter).run();
  };
  if (!distributed) return train();
  try {
    return train();
  } catch (...) {
    // The other ranks would wait for this one in their next collective until the timeout.
    distributed->announce_failure(std::current_exception());
    throw;
  }
}

}  // namespace chestlab

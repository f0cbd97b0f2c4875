#include "chestlab/host/run_driver.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <iostream>

#include "chestlab/engine/compare.h"
#include "chestlab/engine/config.h"
#include "chestlab/errors.h"
#include "chestlab/host/distributed.h"
#include "chestlab/host/experiment.h"
#include "chestlab/host/progress.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/host/trainer.h"
#include "chestlab/host/weights.h"
#include "chestlab/engine/project_info.h"

namespace fs = std::filesystem;

namespace chestlab {

namespace {

HistoryRow to_row(const EpochRecord& r) {
  return HistoryRow{r.epoch, r.lr, r.train_loss, r.val_loss, r.seconds, r.metrics};
}

EpochRecord to_record(const HistoryRow& r) {
  EpochRecord e;
  e.epoch = r.epoch;
  e.lr = r.lr;
  e.train_loss = r.train_loss;
  e.val_loss = r.val_loss;
  e.seconds = r.seconds;
  e.metrics = r.metrics;
  return e;
}

FoldStatus to_fold_status(FoldOutcome outcome) {
  switch (outcome) {
    case FoldOutcome::Complete: return FoldStatus::Complete;
    case FoldOutcome::StoppedEarly: return FoldStatus::StoppedEarly;
    case FoldOutcome::Interrupted: return FoldStatus::Interrupted;
    case FoldOutcome::Failed: return FoldStatus::Failed;
  }
  return FoldStatus::Failed;
}

std::vector<std::string> ids_of(const Experiment& exp, const std::vector<std::size_t>& indices) {
  std::vector<std::string> ids;
  ids.reserve(indices.size());
  for (auto i : indices) ids.push_back(exp.samples()[i].id);
  return ids;
}

std::string metrics_text(const std::vector<std::string>& names, const std::vector<double>& values) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i)
    out += fmt::format("  {} {:.4f}", names[i], values[i]);
  return out;
}

// Records each finished epoch in the run file, in one atomic transaction per epoch.
class RunRecorder : public FoldObserver {
 public:
  RunRecorder(RunFile& file, const Experiment& exp, ProgressPrinter& progress)
      : file_(file), exp_(exp), progress_(progress) {}

  void on_epoch_end(int fold, const EpochRecord& r, bool improved, const Model& model,
                    const FoldCheckpoint& checkpoint) override {
    std::vector<NamedArray> best;
    if (improved) best = weight_arrays(model);
    const double monitored = r.metrics.at(exp_.monitor_index());
    file_.transaction([&](RunWriter& w) {
      w.append_epoch(fold, to_row(r));
      if (improved) w.set_fold_best(fold, r.epoch, monitored, best);
      w.set_fold_resume(fold, ResumeBlob{checkpoint.next_epoch,
                                         {{"model", checkpoint.model_state},
                                          {"optimizer", checkpoint.optimizer_state},
                                          {"scheduler", checkpoint.scheduler_state}}});
      for (const auto& s : pending_skipped_) w.add_skipped(s.id, s.file, s.reason);
    });
    pending_skipped_.clear();
    progress_.line(fmt::format("fold {} epoch {:>3}/{}  lr {:.2e}  train_loss {:.4f}  val_loss {:.4f}{}  "
                               "{:.1f}s  {:.1f} img/s  data wait {:.0f}%{}",
                               fold, r.epoch + 1, exp_.config().train.epochs, r.lr, r.train_loss, r.val_loss,
                               metrics_text(exp_.metric_names(), r.metrics), r.seconds, r.images_per_second,
                               100 * r.data_wait_fraction, improved ? "  *best*" : ""));
  }
  void on_batch_end(int fold, std::int64_t epoch, std::size_t batch, std::size_t batches, double loss,
                    double ips) override {
    progress_.batch(fold, epoch, exp_.config().train.epochs, batch, batches, loss, ips);
  }
  void on_skipped(int, const std::vector<SkippedSample>& skipped) override {
    for (const auto& s : skipped) {
      progress_.line(fmt::format("skipped sample {}: {}: {}", s.id, s.file, s.reason));
      pending_skipped_.push_back(s);
    }
  }

 private:
  RunFile& file_;
  const Experiment& exp_;
  ProgressPrinter& progress_;
  std::vector<SkippedSample> pending_skipped_;
};

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

// A rank other than 0 of a distributed run: trains along, records nothing.
class SilentObserver : public FoldObserver {
 public:
  void on_epoch_end(int, const EpochRecord&, bool, const Model&, const FoldCheckpoint&) override {}
};

std::string run_path_for(const ExperimentConfig& config, const std::string& run_id) {
  return (fs::path(config.output) / config.name / (run_id + ".h5")).string();
}

}  // namespace

std::string make_run_id(const std::string& config_hash) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return std::string(stamp) + "-" + config_hash.substr(0, 8);
}

RunOutcome run_experiment(const RunRequest& request) {
  install_interrupt_handlers();
  auto registry = std::make_shared<PluginRegistry>();
  registry->discover(request.plugin_dirs);
  for (const auto& problem : registry->problems()) std::cerr << "warning: plugin skipped: " << problem << "\n";

  // A new run reads the experiment file; a resumed run re-reads the configuration it recorded.
  std::optional<RunFile> file;
  ExperimentConfig config;
  RunInfo previous;
  if (!request.resume.empty()) {
    file = RunFile::open(request.resume);
    previous = file->read(LoadWeights::No);
    config = parse_experiment(previous.config_toml, request.resume + ":/config", previous.environment.base_dir, {},
                              *registry);
    // One process would go on with the per-rank batch, i.e. another global batch.
    if (previous.environment.world_size > 1)
      throw ConfigError(fmt::format("{} was trained by {} processes (run --distributed), and resuming a distributed "
                                    "run is not supported yet: start it again",
                                    request.resume, previous.environment.world_size));
  } else if (!request.config_toml.empty()) {
    config = parse_experiment(request.config_toml, request.config_source, request.base_dir, request.overrides,
                              *registry);
  } else {
    config = load_experiment(request.experiment_file, request.overrides, *registry);
  }

  const torch::Device device = choose_device(config.train.device);
  const int threads = configure_threads(config.train.threads);
  configure_determinism(config.train.deterministic);

  std::unique_ptr<DistributedContext> distributed;
  if (request.distributed) {
    if (file) throw ConfigError("--distributed cannot --resume yet: start the run again");
    const DistributedEnv env = distributed_env();
    distributed = std::make_unique<DistributedContext>(env, device);
    if (request.verbose)
      std::cout << fmt::format("rank {} of {} ({} from {}, {}, master {}:{}); global batch {} = {} x {}\n", env.rank,
                               env.world_size, distributed->backend(), env.source, device.str(), env.master_addr,
                               env.master_port, env.world_size * config.train.batch_size, env.world_size,
                               config.train.batch_size)
                << std::flush;
  }
  ProgressPrinter progress(request.verbose && (!distributed || distributed->is_root()));

  Experiment experiment(config, registry);
  if (distributed && !distributed->is_root()) {
    // Trains in step with rank 0 (same folds, same collectives); rank 0 records everything.
    SilentObserver silent;
    RunOutcome outcome;
    outcome.status = RunStatus::Complete;
    for (int k : experiment.folds_to_run()) {
      FoldTrainer trainer(experiment, k, device, distributed.get());
      const FoldResult result = trainer.run(silent);
      if (result.outcome == FoldOutcome::Failed) outcome.status = RunStatus::Failed;
      if (result.outcome == FoldOutcome::Interrupted) {
        outcome.status = RunStatus::Interrupted;
        break;
      }
    }
    outcome.exit_code = outcome.status == RunStatus::Interrupted ? 130 : outcome.status == RunStatus::Failed ? 1 : 0;
    return outcome;
  }
  if (!file) {
    const std::string run_id = request.run_id.empty() ? make_run_id(config.hash()) : request.run_id;
    RunMeta meta{config.name, run_id, config.hash(), static_cast<std::int64_t>(config.seed),
                 config.monitor().name, config.monitor().maximize ? MonitorMode::Max : MonitorMode::Min};
    Environment environment = describe_environment(*registry, device, threads, config);
    environment.world_size = distributed ? distributed->world_size() : 1;
    file = RunFile::create(request.run_path.empty() ? run_path_for(config, run_id) : request.run_path, meta,
                           config.resolved_toml(), environment);
  } else {
    file->transaction([](RunWriter& w) { w.set_status(RunStatus::Running); });
  }
  progress.line(fmt::format("run {}  ({} samples, {} on {} thread(s))", file->path(), experiment.samples().size(),
                            device.str(), threads));

  RunRecorder recorder(*file, experiment, progress);
  bool interrupted = false, failed = false;
  std::vector<std::vector<double>> baselines;  // per fold: metrics of an empty prediction
  for (int k : experiment.folds_to_run()) {
    const FoldPlan& plan = experiment.plans().at(static_cast<std::size_t>(k));
    std::optional<ResumeState> resume;
    if (const FoldInfo* done = previous.fold(k)) {
      if (is_finished(done->status)) continue;  // nothing left to do for this fold
      if (auto blob = read_fold_resume(file->path(), k)) {
        resume = ResumeState{FoldCheckpoint{blob->next_epoch, blob->parts.at("model"), blob->parts.at("optimizer"),
                                            blob->parts.at("scheduler")},
                             {}};
        for (const auto& row : done->history) resume->history.push_back(to_record(row));
      } else {
        file->transaction([&](RunWriter& w) { w.remove_fold(k); });  // failed before its first epoch
      }
    }
    if (!resume) {
      file->transaction([&](RunWriter& w) {
        w.begin_fold(k, experiment.metric_names(), ids_of(experiment, plan.train), ids_of(experiment, plan.val));
      });
    } else {
      file->transaction([&](RunWriter& w) { w.set_fold_status(k, FoldStatus::Running); });
    }
    progress.line(fmt::format("fold {}: {} training, {} validation samples{}", k, plan.train.size(), plan.val.size(),
                              resume ? fmt::format(" (resuming at epoch {})", resume->checkpoint.next_epoch + 1) : ""));

    FoldTrainer trainer(experiment, k, device, distributed.get());
    FoldResult result = trainer.run(recorder, resume);
    if (result.outcome == FoldOutcome::Complete || result.outcome == FoldOutcome::StoppedEarly)
      baselines.push_back(trainer.empty_prediction_metrics(plan.val));
    file->transaction([&](RunWriter& w) { w.set_fold_status(k, to_fold_status(result.outcome), result.error); });
    if (result.outcome == FoldOutcome::Failed) {
      failed = true;
      progress.line(fmt::format("fold {} failed: {}", k, result.error));
      std::cerr << fmt::format("error: fold {} failed: {}\n", k, result.error);
    }
    if (result.outcome == FoldOutcome::Interrupted) {
      interrupted = true;
      break;
    }
    if (!plan.test.empty() && result.best_epoch >= 0) {
      RunInfo now = file->read(LoadWeights::Yes);
      load_best_weights(trainer.model(), *now.fold(k));
      EpochRecord test = trainer.evaluate(plan.test, result.best_epoch);
      std::vector<MetricValue> values;
      for (std::size_t i = 0; i < test.metrics.size(); ++i)
        values.push_back({experiment.metric_names()[i], test.metrics[i]});
      values.push_back({"loss", test.val_loss});
      file->transaction([&](RunWriter& w) { w.write_test(values); });
      progress.line(fmt::format("test ({} samples, best epoch {}):{}", plan.test.size(), result.best_epoch + 1,
                                metrics_text(experiment.metric_names(), test.metrics)));
    }
  }

  RunOutcome outcome;
  outcome.path = file->path();
  outcome.status = interrupted ? RunStatus::Interrupted : failed ? RunStatus::Failed : RunStatus::Complete;
  outcome.exit_code = interrupted ? 130 : failed ? 1 : 0;
  file->transaction([&](RunWriter& w) {
    w.write_summary();
    w.set_status(outcome.status);
    if (!interrupted) w.set_finished_now();
  });
  if (request.verbose) {
    RunInfo info = file->read(LoadWeights::No);
    std::cout << "\n" << render_compare(build_compare_table({info}, std::nullopt), CompareFormat::Table);
    if (!baselines.empty()) {
      // What predicting nothing at all scores on the same validation folds.
      std::string line = "empty prediction (all background, no boxes) on the same folds:";
      for (std::size_t m = 0; m < experiment.metric_names().size(); ++m) {
        double sum = 0;
        for (const auto& b : baselines) sum += b[m];
        line += fmt::format("  {} {:.4f}", experiment.metric_names()[m], sum / static_cast<double>(baselines.size()));
      }
      std::cout << "\n" << line << "\n";
    }
    if (interrupted) std::cout << "\ninterrupted: continue with `chestlab run --resume " << outcome.path << "`\n";
  }
  return outcome;
}

}  // namespace chestlab

#include "run_output.h"

#include <fmt/format.h>

#include <iostream>

#include "chestlab/engine/compare.h"
#include "progress.h"

namespace chestlab::app {

namespace {

std::string metrics_text(const std::vector<std::string>& names, const std::vector<double>& values) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i)
    out += fmt::format("  {} {:.4f}", names[i], values[i]);
  return out;
}

class RunPrinter : public RunObserver {
 public:
  explicit RunPrinter(bool verbose) : verbose_(verbose), progress_(verbose) {}

  void on_rank_joined(const RankJoined& r) override {
    if (!verbose_) return;
    std::cout << fmt::format("rank {} of {} ({} from {}, {}, master {}:{}); global batch {} = {} x {}\n", r.rank,
                             r.world_size, r.backend, r.env_source, r.device, r.master_addr, r.master_port,
                             r.world_size * r.batch_size, r.world_size, r.batch_size)
              << std::flush;
  }
  void on_run_started(const RunStarted& run) override {
    metric_names_ = run.metric_names;
    epochs_ = run.epochs;
    progress_.line(fmt::format("run {}  ({} samples, {} on {} thread(s))", run.path, run.samples, run.device,
                               run.threads));
  }
  void on_fold_started(const FoldStarted& f) override {
    progress_.line(fmt::format("fold {}: {} training, {} validation samples{}", f.fold, f.train_samples,
                               f.val_samples,
                               f.resume_epoch ? fmt::format(" (resuming at epoch {})", *f.resume_epoch + 1) : ""));
  }
  void on_batch_done(const BatchDone& b) override {
    progress_.batch(b.fold, b.epoch, epochs_, b.batch, b.batches, b.mean_loss, b.images_per_second);
  }
  void on_epoch_done(int fold, const HistoryRow& r, const TrainingThroughput& t, bool improved) override {
    progress_.line(fmt::format("fold {} epoch {:>3}/{}  lr {:.2e}  train_loss {:.4f}  val_loss {:.4f}{}  "
                               "{:.1f}s  {:.1f} img/s  data wait {:.0f}%{}",
                               fold, r.epoch + 1, epochs_, r.lr, r.train_loss, r.val_loss,
                               metrics_text(metric_names_, r.metrics), r.seconds, t.images_per_second,
                               100 * t.data_wait_fraction, improved ? "  *best*" : ""));
  }
  void on_sample_skipped(int, const SkippedSample& s) override {
    progress_.line(fmt::format("skipped sample {}: {}: {}", s.id, s.file, s.reason));
  }
  void on_fold_failed(int fold, const std::string& error) override {
    progress_.line(fmt::format("fold {} failed: {}", fold, error));
    std::cerr << fmt::format("error: fold {} failed: {}\n", fold, error);
  }
  void on_test_done(int, const TestDone& test) override {
    progress_.line(fmt::format("test ({} samples, best epoch {}):{}", test.samples, test.best_epoch + 1,
                               metrics_text(metric_names_, test.metrics)));
  }

 private:
  bool verbose_;
  ProgressPrinter progress_;
  std::vector<std::string> metric_names_;
  std::int64_t epochs_ = 0;
};

void print_results(const RunOutcome& outcome) {
  const RunInfo info = read_run(outcome.path, LoadWeights::No);
  std::cout << "\n" << render_compare(build_compare_table({info}, std::nullopt), CompareFormat::Table);
  if (!outcome.empty_prediction.empty()) {
    // What predicting nothing at all scores on the same validation folds.
    std::string line = "empty prediction (all background, no boxes) on the same folds:";
    for (const MetricValue& m : outcome.empty_prediction) line += fmt::format("  {} {:.4f}", m.metric, m.value);
    std::cout << "\n" << line << "\n";
  }
  if (outcome.status == RunStatus::Interrupted)
    std::cout << "\ninterrupted: continue with `chestlab run --resume " << outcome.path << "`\n";
}

}  // namespace

RunOutcome run_experiment_on_terminal(const RunRequest& request, bool verbose) {
  RunPrinter printer(verbose);
  RunOutcome outcome = run_experiment(request, printer);
  if (verbose && !outcome.path.empty()) print_results(outcome);
  return outcome;
}

}  // namespace chestlab::app

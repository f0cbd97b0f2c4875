#include "chestlab/host/tensorboard_log.h"

#include <filesystem>
#include <set>
#include <utility>

namespace fs = std::filesystem;

namespace chestlab {

namespace {

// Per-batch events have their own tags (and their own steps: the fold's global batch index).
constexpr const char* kBatchPrefix = "batch/";
constexpr const char* kBatchLoss = "batch/train_loss";

bool is_batch_event(const tensorboard::Event& event) {
  if (event.scalars.empty()) return false;
  for (const tensorboard::Scalar& s : event.scalars)
    if (s.tag.rfind(kBatchPrefix, 0) != 0) return false;
  return true;
}

}  // namespace

std::string tensorboard_root(const std::string& run_file, const std::string& run_id, const ExperimentConfig& config) {
  const fs::path file(run_file);
  if (file.filename() == run_id + ".h5") return (file.parent_path() / "tb" / run_id).string();
  return (fs::path(config.output) / config.name / "tb" / run_id).string();
}

std::vector<tensorboard::Scalar> epoch_scalars(const HistoryRow& row, const std::vector<std::string>& metric_names,
                                               const TrainingThroughput* throughput) {
  std::vector<tensorboard::Scalar> out;
  out.push_back({"train/loss", static_cast<float>(row.train_loss)});
  out.push_back({"val/loss", static_cast<float>(row.val_loss)});
  for (std::size_t i = 0; i < metric_names.size() && i < row.metrics.size(); ++i)
    out.push_back({"val/" + metric_names[i], static_cast<float>(row.metrics[i])});
  out.push_back({"train/lr", static_cast<float>(row.lr)});
  if (throughput) {
    out.push_back({"train/images_per_second", static_cast<float>(throughput->images_per_second)});
    out.push_back({"train/data_wait_fraction", static_cast<float>(throughput->data_wait_fraction)});
  }
  return out;
}

TensorBoardLog::TensorBoardLog(std::string root, std::int64_t every, const RunInfo& previous, RunObserver& next)
    : root_(std::move(root)), every_(every), previous_(previous), next_(next) {}

TensorBoardLog::~TensorBoardLog() = default;

tensorboard::EventFileWriter& TensorBoardLog::writer() {
  if (!writer_)
    writer_ = std::make_unique<tensorboard::EventFileWriter>((fs::path(root_) / ("fold" + std::to_string(fold_))).string());
  return *writer_;
}

void TensorBoardLog::sync_fold(int k, std::int64_t next_epoch, std::size_t batches) {
  writer_.reset();
  fold_ = k;
  const std::int64_t first_lost_batch = next_epoch * static_cast<std::int64_t>(batches);
  const std::vector<tensorboard::Event> kept = tensorboard::prune_event_files(
      (fs::path(root_) / ("fold" + std::to_string(k))).string(), [&](const tensorboard::Event& e) {
        if (is_batch_event(e)) return batches == 0 || e.step < first_lost_batch;
        return e.step < next_epoch;
      });
  const FoldInfo* recorded = previous_.fold(k);
  if (!recorded) return;
  std::set<std::pair<std::string, std::int64_t>> have;
  for (const tensorboard::Event& e : kept)
    if (!is_batch_event(e))
      for (const tensorboard::Scalar& s : e.scalars) have.insert({s.tag, e.step});
  // Epochs the run file has and the files lack (a process killed between recording an epoch
  // and writing its event, or tensorboard turned on by a resume): their recorded numbers.
  for (const HistoryRow& row : recorded->history) {
    if (row.epoch >= next_epoch) continue;
    std::vector<tensorboard::Scalar> missing;
    for (tensorboard::Scalar& s : epoch_scalars(row, recorded->metric_names, nullptr))
      if (!have.count({s.tag, row.epoch})) missing.push_back(std::move(s));
    if (!missing.empty()) writer().write_scalars(row.epoch, missing);
  }
}

void TensorBoardLog::on_run_started(const RunStarted& run) {
  metric_names_ = run.metric_names;
  // Folds a resumed run will not train again: their files as their history says.
  for (const FoldInfo& f : previous_.folds)
    if (is_finished(f.status)) sync_fold(f.index, static_cast<std::int64_t>(f.history.size()), 0);
  writer_.reset();
  next_.on_run_started(run);
}

void TensorBoardLog::on_fold_started(const FoldStarted& fold) {
  batches_ = fold.batches;
  sync_fold(fold.fold, fold.resume_epoch.value_or(0), fold.batches);
  next_.on_fold_started(fold);
}

void TensorBoardLog::on_batch_done(const BatchDone& batch) {
  if (every_ > 0 && batch.fold == fold_ && batch.batch >= 1) {
    const std::int64_t step =
        batch.epoch * static_cast<std::int64_t>(batches_) + static_cast<std::int64_t>(batch.batch) - 1;
    if ((step + 1) % every_ == 0) writer().write_scalars(step, {{kBatchLoss, static_cast<float>(batch.mean_loss())}});
  }
  next_.on_batch_done(batch);
}

void TensorBoardLog::on_epoch_done(int fold, const HistoryRow& row, const TrainingThroughput& throughput,
                                   bool improved) {
  if (fold == fold_) writer().write_scalars(row.epoch, epoch_scalars(row, metric_names_, &throughput));
  next_.on_epoch_done(fold, row, throughput, improved);
}

}  // namespace chestlab

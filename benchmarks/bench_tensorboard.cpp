// What TensorBoard event files cost a run, measured on the code that writes them
// (chestlab::TensorBoardLog, the observer `chestlab run --tensorboard` uses), with the
// quickstart's shape and no training around it: 3 folds x 8 epochs x 10 batches, 2 metrics,
// a per-batch event every 10 batches (the default). Then a resume of every fold at epoch 4
// (pruning the files, writing the new file's events).
//
//   bench_tensorboard [DIR] [--epochs E] [--batches B] [--every N] [--repeat R]
//
// Prints the time spent in the observer per epoch (events written, files pruned), and the
// size of the files per fold and in all.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "chestlab/host/tensorboard_log.h"

using namespace chestlab;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Nothing : RunObserver {};

HistoryRow row_for(std::int64_t epoch) {
  HistoryRow r;
  r.epoch = epoch;
  r.lr = 3e-3 / static_cast<double>(epoch + 1);
  r.train_loss = 0.9 - 0.05 * static_cast<double>(epoch);
  r.val_loss = 0.95 - 0.05 * static_cast<double>(epoch);
  r.seconds = 1.7;
  r.metrics = {0.3 + 0.02 * static_cast<double>(epoch), 0.9};
  return r;
}

std::uint64_t folder_bytes(const fs::path& dir) {
  std::uint64_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) bytes += e.file_size();
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = fs::temp_directory_path() / "chestlab_bench_tensorboard";
  std::int64_t epochs = 8, batches = 10, every = 10, repeat = 20;
  const int folds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoll(argv[++i]) : 0; };
    if (a == "--epochs") epochs = next();
    else if (a == "--batches") batches = next();
    else if (a == "--every") every = next();
    else if (a == "--repeat") repeat = next();
    else dir = a;
  }
  const std::vector<std::string> metrics{"mean_iou", "pixel_accuracy"};
  Nothing nothing;
  double train_seconds = 0, resume_seconds = 0;
  std::uint64_t bytes = 0;
  for (std::int64_t r = 0; r < repeat; ++r) {
    fs::remove_all(dir);
    // A run from scratch.
    {
      RunInfo none;
      TensorBoardLog log(dir.string(), every, none, nothing);
      const auto t0 = Clock::now();
      log.on_run_started(RunStarted{"bench.h5", 240, "cpu", 2, metrics, epochs});
      for (int k = 0; k < folds; ++k) {
        log.on_fold_started(FoldStarted{k, 160, 80, std::nullopt, static_cast<std::size_t>(batches)});
        for (std::int64_t e = 0; e < epochs; ++e) {
          for (std::int64_t b = 1; b <= batches; ++b)
            log.on_batch_done(BatchDone{k, e, static_cast<std::size_t>(b), static_cast<std::size_t>(batches), [] { return 0.8; }, 110});
          log.on_epoch_done(k, row_for(e), TrainingThroughput{110.0, 0.02}, e == 0);
        }
      }
      train_seconds += seconds_since(t0);
    }
    bytes = folder_bytes(dir);
    // Every fold resumed at the middle: its files pruned to epochs 0..3, the rest again.
    {
      RunInfo previous;
      for (int k = 0; k < folds; ++k) {
        FoldInfo f;
        f.index = k;
        f.status = FoldStatus::Interrupted;
        f.metric_names = metrics;
        for (std::int64_t e = 0; e < epochs / 2; ++e) f.history.push_back(row_for(e));
        previous.folds.push_back(f);
      }
      TensorBoardLog log(dir.string(), every, previous, nothing);
      const auto t0 = Clock::now();
      log.on_run_started(RunStarted{"bench.h5", 240, "cpu", 2, metrics, epochs});
      for (int k = 0; k < folds; ++k) {
        log.on_fold_started(FoldStarted{k, 160, 80, epochs / 2, static_cast<std::size_t>(batches)});
        for (std::int64_t e = epochs / 2; e < epochs; ++e) {
          for (std::int64_t b = 1; b <= batches; ++b)
            log.on_batch_done(BatchDone{k, e, static_cast<std::size_t>(b), static_cast<std::size_t>(batches), [] { return 0.8; }, 110});
          log.on_epoch_done(k, row_for(e), TrainingThroughput{110.0, 0.02}, false);
        }
      }
      resume_seconds += seconds_since(t0);
    }
  }
  const double per_epoch = train_seconds / static_cast<double>(repeat * folds * epochs);
  const double per_resumed_epoch = resume_seconds / static_cast<double>(repeat * folds * (epochs - epochs / 2));
  std::cout << fmt::format("{} folds x {} epochs x {} batches, a batch event every {} batches, {} repeats\n", folds,
                           epochs, batches, every, repeat)
            << fmt::format("| measure | value |\n|---|---|\n")
            << fmt::format("| event files of a run, bytes | {} |\n", bytes)
            << fmt::format("| per fold, bytes | {} |\n", bytes / folds)
            << fmt::format("| time per epoch, new run (fold start, events), microseconds | {:.1f} |\n", per_epoch * 1e6)
            << fmt::format("| time per epoch, resumed at epoch {} (prune, events), microseconds | {:.1f} |\n",
                           epochs / 2, per_resumed_epoch * 1e6);
  fs::remove_all(dir);
  return 0;
}

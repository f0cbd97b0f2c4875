// Throughput of an experiment's training loop and of its data loading alone.
//
//   bench_training [EXP.toml] [--set k=v]...     (default: experiments/quickstart.toml)
//
// Prints: loader-only images/s with 1 and 2 workers (no model), training images/s over one
// epoch of fold 0, and the share of that epoch spent waiting for batches.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "chestlab/host/experiment.h"
#include "chestlab/host/loader.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/host/trainer.h"

using namespace chestlab;

namespace {

struct Quiet : FoldObserver {
  std::vector<HistoryRow> epochs;
  std::vector<TrainingThroughput> throughput;
  void on_epoch_end(int, const HistoryRow& r, const TrainingThroughput& t, bool, const Model&,
                    const ResumeBlob&) override {
    epochs.push_back(r);
    throughput.push_back(t);
  }
};

double loader_images_per_second(const Experiment& exp, std::size_t workers) {
  LoaderOptions o;
  o.batch_size = static_cast<std::size_t>(exp.config().train.batch_size);
  o.workers = workers;
  o.prefetch = static_cast<std::size_t>(exp.config().train.prefetch);
  o.seed = exp.config().seed;
  const auto& train = exp.plans().front().train;
  const auto t0 = std::chrono::steady_clock::now();
  BatchLoader loader(exp.dataset(), train, &exp.augment(), o);
  std::size_t n = 0;
  while (auto b = loader.next()) n += static_cast<std::size_t>(b->size());
  return static_cast<double>(n) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string file = std::string(CHESTLAB_SOURCE_DIR) + "/experiments/quickstart.toml";
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--set" && i + 1 < argc) overrides.push_back(argv[++i]);
    else file = a;
  }
  try {
    auto registry = std::make_shared<PluginRegistry>();
    registry->discover();
    overrides.push_back("train.epochs=1");
    ExperimentConfig config = load_experiment(file, overrides, *registry);
    const int threads = configure_threads(config.train.threads);
    configure_determinism(config.train.deterministic);
    Experiment exp(config, registry);

    std::cout << fmt::format("experiment {} ({}), {} training images of fold 0, batch {}, {} LibTorch threads, "
                             "{} loader workers in training\n\n",
                             config.name, file, exp.plans().front().train.size(), config.train.batch_size, threads,
                             config.train.workers);
    std::cout << fmt::format("| {:<36} | {:>10} |\n|{:-<38}|{:->12}|\n", "measure", "value", "", "");
    for (std::size_t workers : {1, 2})
      std::cout << fmt::format("| {:<36} | {:>10.1f} |\n", fmt::format("loader only, {} worker(s), images/s", workers),
                               loader_images_per_second(exp, workers));
    Quiet observer;
    FoldTrainer trainer(exp, 0, choose_device(config.train.device));
    trainer.run(observer);
    const HistoryRow& r = observer.epochs.at(0);
    const TrainingThroughput& t = observer.throughput.at(0);
    std::cout << fmt::format("| {:<36} | {:>10.1f} |\n", "training, images/s", t.images_per_second);
    std::cout << fmt::format("| {:<36} | {:>9.1f}% |\n", "training time waiting for data", 100 * t.data_wait_fraction);
    std::cout << fmt::format("| {:<36} | {:>10.1f} |\n", "epoch incl. validation, seconds", r.seconds);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

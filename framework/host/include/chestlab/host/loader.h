// Batches for one epoch, loaded by worker threads into a bounded prefetch window while
// the model computes. The batch sequence depends only on (seed, fold, epoch), never on
// the number of workers or their timing: batch b always holds the same samples, with the
// same augmentation, and batches come out in order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "chestlab/dataset.h"
#include "chestlab/host/augment.h"
#include "chestlab/engine/runfile.h"  // SkippedSample

namespace chestlab {

struct LoaderOptions {
  std::size_t batch_size = 16;
  std::size_t workers = 2;     // 0 = load in the calling thread
  std::size_t prefetch = 4;    // batches loaded ahead of the consumer
  bool shuffle = true;
  bool skip_bad_samples = false;  // DataError: skip the sample (recorded) or stop
  bool pin_memory = false;        // page-locked batches for non-blocking CUDA copies
  std::uint64_t seed = 0;
  std::int64_t fold = 0;
  std::int64_t epoch = 0;
};

class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const Dataset> dataset, std::vector<std::size_t> indices,
              const AugmentPipeline* augment, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  std::size_t batches() const { return batch_count_; }
  // The next batch in order, or nullopt after the last. Rethrows a worker's error.
  std::optional<Batch> next();
  // Seconds next() spent blocked waiting for a batch not yet loaded.
  double wait_seconds() const { return wait_seconds_; }
  std::vector<SkippedSample> skipped() const;

  // The sample order of an epoch (exposed for tests and split records).
  static std::vector<std::size_t> epoch_order(std::vector<std::size_t> indices, const LoaderOptions& options);

 private:
  Batch load_batch(std::size_t b);
  void worker_loop();

  std::shared_ptr<const Dataset> dataset_;
  std::vector<std::size_t> order_;
  const AugmentPipeline* augment_;
  LoaderOptions options_;
  std::size_t batch_count_ = 0;

  std::mutex mutex_;
  std::condition_variable ready_;    // a batch finished (or failed)
  std::condition_variable window_;   // the consumer advanced
  std::size_t next_to_load_ = 0;
  std::size_t next_to_yield_ = 0;
  std::map<std::size_t, Batch> done_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::vector<SkippedSample> skipped_;
  std::vector<std::thread> threads_;
  double wait_seconds_ = 0;
};

// Stacks samples into a batch (images and masks must share one size).
Batch collate(std::vector<Sample>& samples, const std::vector<std::size_t>& indices, bool pin_memory);

}  // namespace chestlab

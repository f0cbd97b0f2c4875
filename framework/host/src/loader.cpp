#include "chestlab/host/loader.h"

#include <torch/torch.h>

#include <chrono>

#include "chestlab/errors.h"
#include "chestlab/rng.h"

namespace chestlab {

std::vector<std::size_t> BatchLoader::epoch_order(std::vector<std::size_t> indices, const LoaderOptions& o) {
  if (o.shuffle) {
    Rng rng(mix_seed({o.seed, static_cast<std::uint64_t>(o.fold), static_cast<std::uint64_t>(o.epoch), 0x5u}));
    shuffle(indices.begin(), indices.end(), rng);
  }
  return indices;
}

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset, std::vector<std::size_t> indices,
                         const AugmentPipeline* augment, LoaderOptions options)
    : dataset_(std::move(dataset)),
      order_(epoch_order(std::move(indices), options)),
      augment_(augment),
      options_(options) {
  if (options_.batch_size == 0) throw std::invalid_argument("batch size must be at least 1");
  options_.prefetch = std::max<std::size_t>(options_.prefetch, 1);
  batch_count_ = (order_.size() + options_.batch_size - 1) / options_.batch_size;
  for (std::size_t i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  window_.notify_all();
  for (auto& t : threads_) t.join();
}

Batch BatchLoader::load_batch(std::size_t b) {
  const std::size_t begin = b * options_.batch_size;
  const std::size_t end = std::min(order_.size(), begin + options_.batch_size);
  std::vector<Sample> samples;
  std::vector<std::size_t> kept;
  for (std::size_t i = begin; i < end; ++i) {
    const std::size_t index = order_[i];
    try {
      Sample s = dataset_->get(index);
      if (augment_ && !augment_->empty()) {
        // Seeded by the sample, not by the worker: the same augmentation whatever thread loads it.
        augment_->apply(s, mix_seed({options_.seed, static_cast<std::uint64_t>(options_.fold),
                                     static_cast<std::uint64_t>(options_.epoch), index}));
      }
      samples.push_back(std::move(s));
      kept.push_back(index);
    } catch (const DataError& e) {
      if (!options_.skip_bad_samples) throw;
      std::lock_guard<std::mutex> lock(mutex_);
      skipped_.push_back({dataset_->info(index).id, e.file, e.reason_text});
    }
  }
  return collate(samples, kept, options_.pin_memory);
}

void BatchLoader::worker_loop() {
  for (;;) {
    std::size_t b;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      window_.wait(lock, [&] {
        return stopping_ || error_ || next_to_load_ >= batch_count_ ||
               next_to_load_ < next_to_yield_ + options_.prefetch;
      });
      if (stopping_ || error_ || next_to_load_ >= batch_count_) return;
      b = next_to_load_++;
    }
    try {
      Batch batch = load_batch(b);
      std::lock_guard<std::mutex> lock(mutex_);
      done_.emplace(b, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    ready_.notify_all();
  }
}

std::optional<Batch> BatchLoader::next() {
  if (next_to_yield_ >= batch_count_) return std::nullopt;
  if (threads_.empty()) return load_batch(next_to_yield_++);
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return error_ || done_.count(next_to_yield_); });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (error_ && !done_.count(next_to_yield_)) std::rethrow_exception(error_);
  Batch batch = std::move(done_.at(next_to_yield_));
  done_.erase(next_to_yield_++);
  lock.unlock();
  window_.notify_all();
  return batch;
}

std::vector<SkippedSample> BatchLoader::skipped() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mutex_));
  return skipped_;
}

Batch collate(std::vector<Sample>& samples, const std::vector<std::size_t>& indices, bool pin_memory) {
  Batch batch;
  batch.indices = indices;
  if (samples.empty()) return batch;
  std::vector<torch::Tensor> images, masks;
  std::vector<std::int64_t> labels;
  bool all_masks = true;
  for (auto& s : samples) {
    images.push_back(s.image);
    all_masks = all_masks && s.mask.defined();
    if (s.mask.defined()) masks.push_back(s.mask);
    batch.boxes.push_back(s.boxes.defined() ? s.boxes : torch::zeros({0, 4}));
    labels.push_back(s.label);
    batch.ids.push_back(s.id);
    batch.original_sizes.emplace_back(s.original_height, s.original_width);
  }
  batch.images = torch::stack(images);
  if (all_masks) batch.masks = torch::stack(masks);
  batch.labels = torch::tensor(labels, torch::kInt64);
  if (pin_memory) {
    batch.images = batch.images.pin_memory();
    if (batch.masks.defined()) batch.masks = batch.masks.pin_memory();
  }
  return batch;
}

}  // namespace chestlab

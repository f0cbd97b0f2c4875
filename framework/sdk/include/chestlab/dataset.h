// Datasets: a pool of samples. The host splits the pool into folds by SampleInfo,
// applies augmentations and collates batches; a dataset only decodes one sample.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "chestlab/paths.h"

namespace chestlab {

struct Sample {
  torch::Tensor image;  // float32 [1, H, W]
  torch::Tensor mask;   // float32 [1, H, W] with values 0/1, or undefined
  torch::Tensor boxes;  // float32 [N, 4] as (x, y, w, h) in pixels of `image`, or undefined
  std::int64_t label = 0;  // class index used for stratification (see class_names())
  std::string group;       // patient: every sample of a group lands in the same fold
  std::string id;
  // Size of the source image before resizing: boxes scale back to it for submissions.
  std::int64_t original_height = 0;
  std::int64_t original_width = 0;
  std::map<std::string, std::string> meta;  // e.g. age, sex, view position
};

// What splitting needs, without decoding pixels.
struct SampleInfo {
  std::string id;
  std::string group;
  std::int64_t label = 0;
};

struct DatasetContext {
  std::string base_dir;     // directory of the experiment file: relative paths resolve here
  std::uint64_t seed = 0;   // experiment seed

  // A path parameter as the experiment file means it (relative to the file's folder).
  std::string resolve(const std::string& path) const { return resolve_path(path, base_dir); }
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  virtual SampleInfo info(std::size_t index) const = 0;
  // Must be thread-safe and deterministic: the loader calls it from several workers.
  // Throws DataError for an unreadable input.
  virtual Sample get(std::size_t index) const = 0;
  virtual std::vector<std::string> class_names() const = 0;
};

// A collated batch. Built by the host's loader, moved to the device once per step.
struct Batch {
  torch::Tensor images;               // float32 [B, 1, H, W]
  torch::Tensor masks;                // float32 [B, 1, H, W], or undefined
  std::vector<torch::Tensor> boxes;   // per image float32 [N, 4] (x, y, w, h)
  torch::Tensor labels;               // int64 [B]
  std::vector<std::string> ids;
  std::vector<std::size_t> indices;   // dataset indices
  // Per image (height, width) of the source before resizing (Sample::original_*).
  std::vector<std::pair<std::int64_t, std::int64_t>> original_sizes;

  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
  // Copies tensors to `device` (non-blocking when the source is pinned and device is CUDA).
  Batch to(const torch::Device& device, bool non_blocking = false) const;
};

}  // namespace chestlab

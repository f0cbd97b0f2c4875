// Weights in and out of PyTorch's own files: reading what Python's torch.save wrote
// (`[model] init`), and writing what Python's torch.load reads (`chestlab export`).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace chestlab {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Every tensor of a file written by torch.save (the zip format, PyTorch >= 1.6), in file
// order. The object may be a state_dict or any nesting of dicts, lists and tuples (a
// checkpoint {"model": state_dict, "epoch": 3}); names join the keys and list positions with
// '.', as "model.conv.weight". Non-tensor values (numbers, strings) are skipped. A small
// pickle reader of its own: LibTorch 1.13's pickle_load turns the OrderedDict of a state_dict
// into None. Throws DataError naming the file when it is not a torch.save zip file (the
// legacy format of _use_new_zipfile_serialization=False included) or holds objects other
// than tensors and containers.
NamedTensors read_torch_file(const std::string& path);

// Writes `tensors` (CPU copies) as one dict {name: tensor}, a file Python reads with
// torch.load and passes to Module.load_state_dict. Throws DataError when it cannot write.
void write_torch_file(const std::string& path, const NamedTensors& tensors);

struct InitOptions {
  std::string file;                                       // torch.save file
  std::vector<std::pair<std::string, std::string>> rename;  // file-name prefix -> model prefix, first match
  bool partial = false;  // true: model tensors missing from the file keep their initialisation, unexpected ones are ignored
};

// Parses "from=to" rename entries (`to` may be empty: a prefix to drop). Throws ConfigError.
std::vector<std::pair<std::string, std::string>> parse_rename(const std::vector<std::string>& entries);

// Copies the file's tensors into `model`'s parameters and buffers after renaming. Every
// problem is listed in one ConfigError: model tensors missing from the file (unless
// partial), file tensors the model lacks (unless partial), shape mismatches (always).
// Returns how many tensors were loaded.
std::size_t init_from_torch_file(torch::nn::Module& model, const InitOptions& options);

}  // namespace chestlab

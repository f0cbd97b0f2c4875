// What every component (dataset, model, loss, scheduler, metric) declares about itself.
// Torch-free so that tools reading schemas need not pull LibTorch in.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "chestlab/params.h"

namespace chestlab {

enum class Kind { Dataset, Model, Loss, Scheduler, Metric };
const char* to_string(Kind kind);
// "dataset" -> Kind::Dataset; returns false for an unknown name.
bool parse_kind(const std::string& text, Kind& out);

// What a model produces and so which post-processing and metrics apply.
enum class OutputKind { Mask, Boxes };
const char* to_string(OutputKind kind);

struct ComponentInfo {
  Kind kind = Kind::Model;
  std::string name;         // unique within its kind; what `plugin = "..."` names
  std::string version;      // the component's own version, e.g. "1.0.0"
  std::string description;  // one line
  Schema params;
  // Free-form metadata shown by `plugins describe` (e.g. "paper", "output" = "mask").
  std::map<std::string, std::string> tags;
};

}  // namespace chestlab

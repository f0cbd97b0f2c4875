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
// "mask", "mask or boxes": what a loss or metric accepts, for messages and docs.
std::string to_string(const std::vector<OutputKind>& kinds);

struct ComponentInfo {
  Kind kind = Kind::Model;
  std::string name;         // unique within its kind; what `plugin = "..."` names
  std::string version;      // the component's own version, e.g. "1.0.0"
  std::string description;  // one line
  Schema params;
  // Rules across parameters (or beyond one parameter's bounds), checked with `params`.
  std::vector<ParamCheck> checks;

  // The pairing, declared once here and read by the experiment-file check (a box model with
  // a mask-only loss is refused before anything trains), by `chestlab predict` (which
  // post-processing applies) and by `plugins describe` / the docs.
  // Models: what the model produces.
  OutputKind output = OutputKind::Mask;
  // Losses and metrics: the model outputs they can read (rsna_map reads both).
  std::vector<OutputKind> accepts = {OutputKind::Mask};
  // Metrics: whether larger values are better; the default `mode` of a [[metrics]] entry.
  bool higher_is_better = true;

  // Free-form, informative metadata shown by `plugins describe` (e.g. "paper", "source").
  std::map<std::string, std::string> tags;

  bool accepts_output(OutputKind kind) const;
};

}  // namespace chestlab

#include "chestlab/component.h"

namespace chestlab {

const char* to_string(Kind kind) {
  switch (kind) {
    case Kind::Dataset: return "dataset";
    case Kind::Model: return "model";
    case Kind::Loss: return "loss";
    case Kind::Scheduler: return "scheduler";
    case Kind::Metric: return "metric";
  }
  return "?";
}

bool parse_kind(const std::string& text, Kind& out) {
  for (Kind k : {Kind::Dataset, Kind::Model, Kind::Loss, Kind::Scheduler, Kind::Metric}) {
    if (text == to_string(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

const char* to_string(OutputKind kind) { return kind == OutputKind::Mask ? "mask" : "boxes"; }

}  // namespace chestlab

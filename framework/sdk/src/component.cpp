#include "chestlab/component.h"

#include <algorithm>

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

std::string to_string(const std::vector<OutputKind>& kinds) {
  std::string out;
  for (std::size_t i = 0; i < kinds.size(); ++i) out += (i ? " or " : "") + std::string(to_string(kinds[i]));
  return out.empty() ? "nothing" : out;
}

bool ComponentInfo::accepts_output(OutputKind kind) const {
  return std::find(accepts.begin(), accepts.end(), kind) != accepts.end();
}

}  // namespace chestlab

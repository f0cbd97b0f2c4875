// A learning-rate schedule defined outside chestlab: lr halves every `every` epochs.
#include <cmath>

#include "chestlab/sdk.h"

namespace {

struct Halving : chestlab::Scheduler {
  std::int64_t every;
  explicit Halving(std::int64_t e) : every(e) {}
  double lr(const chestlab::ScheduleState& s) override {
    return s.base_lr * std::pow(0.5, static_cast<double>(s.epoch / every));
  }
};

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  chestlab::ComponentInfo info;
  info.name = "outside_halving";
  info.version = "1.0.0";
  info.description = "halves the learning rate every `every` epochs (out-of-tree example)";
  info.params = {chestlab::param_int("every", 2, "epochs between halvings").at_least(1)};
  registrar.add_scheduler(info, [](const chestlab::Params& p) { return std::make_shared<Halving>(p.integer("every")); });
}

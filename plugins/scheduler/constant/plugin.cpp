// Registers the constant learning-rate schedule.
#include "chestlab/sdk.h"

namespace chestlab::constant {

// Always the optimizer's configured lr.
class ConstantSchedule : public Scheduler {
 public:
  double lr(const ScheduleState& state) override { return state.base_lr; }
};

}  // namespace chestlab::constant

namespace {

using namespace chestlab;

ComponentInfo constant_info() {
  ComponentInfo info;
  info.kind = Kind::Scheduler;
  info.name = "constant";
  info.version = "1.0.0";
  info.description = "The optimizer's lr for every epoch";
  info.tags["unit"] = "epoch";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_scheduler(constant_info(),
                          [](const Params&) { return std::make_shared<constant::ConstantSchedule>(); });
}

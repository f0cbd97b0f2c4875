// Registers the step learning-rate schedule.
#include "chestlab/sdk.h"
#include "step.h"

namespace {

using namespace chestlab;

ComponentInfo step_info() {
  ComponentInfo info;
  info.kind = Kind::Scheduler;
  info.name = "step";
  info.version = "1.0.0";
  info.description = "PyTorch StepLR: lr * gamma^floor(epoch / step_size), epoch 0-based";
  info.params = {
      param_required("step_size", ParamType::Int, "epochs between two decays").at_least(1),
      // A decay factor of 0 would stop training altogether.
      param_float("gamma", 0.1, "factor applied to the rate at each decay").above(0.0),
  };
  info.tags["unit"] = "epoch";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_scheduler(step_info(), [](const Params& p) {
    return std::make_shared<step::StepSchedule>(p.integer("step_size"), p.real("gamma"));
  });
}

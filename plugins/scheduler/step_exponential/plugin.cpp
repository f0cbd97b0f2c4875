// Registers the step_exponential learning-rate schedule.
#include "chestlab/sdk.h"
#include "step_exponential.h"

namespace {

using namespace chestlab;

ComponentInfo step_exponential_info() {
  ComponentInfo info;
  info.kind = Kind::Scheduler;
  info.name = "step_exponential";
  info.version = "1.0.0";
  info.description =
      "Course notebook's schedule: lr for hold_epochs epochs, then x gamma every epoch: "
      "lr * gamma^max(0, epoch - hold_epochs + 1), epoch 0-based";
  info.params = {
      param_int("hold_epochs", 20,
                "epochs run at the optimizer's lr before the decay starts (Keras: "
                "`lr if epoch < hold_epochs else lr * gamma`)")
          .at_least(0),
      // A decay factor of 0 would stop training altogether.
      param_float("gamma", 0.1, "factor applied to the rate at each decay").above(0.0),
  };
  info.tags["unit"] = "epoch";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_scheduler(step_exponential_info(), [](const Params& p) {
    return std::make_shared<step_exponential::StepExponentialSchedule>(p.integer("hold_epochs"), p.real("gamma"));
  });
}

// Registers the constant and cosine learning-rate schedules.
#include "chestlab/sdk.h"
#include "schedules.h"

namespace {

using namespace chestlab;

ComponentInfo schedule_info(std::string name, std::string description, Schema params) {
  ComponentInfo info;
  info.kind = Kind::Scheduler;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.description = std::move(description);
  info.params = std::move(params);
  info.tags["unit"] = "epoch";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_scheduler(schedule_info("constant", "The optimizer's lr for every epoch", {}),
                          [](const Params&) { return std::make_shared<basic_schedules::ConstantSchedule>(); });
  registrar.add_scheduler(
      schedule_info("cosine",
                    "Cosine annealing per epoch (RSNA kernel): "
                    "min_lr + (lr - min_lr) * (cos(pi * epoch / epochs) + 1) / 2, epoch 0-based",
                    {param_float("min_lr", 0.0, "the rate the cosine decays towards; must not exceed the optimizer's lr")
                         .at_least(0.0)}),
      [](const Params& p) { return std::make_shared<basic_schedules::CosineSchedule>(p.real("min_lr")); });
}

// Registers the cosine learning-rate schedule.
#include "chestlab/sdk.h"
#include "cosine.h"

namespace {

using namespace chestlab;

ComponentInfo cosine_info() {
  ComponentInfo info;
  info.kind = Kind::Scheduler;
  info.name = "cosine";
  info.version = "1.0.0";
  info.description =
      "Cosine annealing per epoch (RSNA kernel): min_lr + (lr - min_lr) * (cos(pi * epoch / epochs) + 1) / 2, "
      "epoch 0-based";
  info.params = {param_float("min_lr", 0.0, "the rate the cosine decays towards; must not exceed the optimizer's lr")
                     .at_least(0.0)};
  info.tags["unit"] = "epoch";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_scheduler(cosine_info(),
                          [](const Params& p) { return std::make_shared<cosine::CosineSchedule>(p.real("min_lr")); });
}

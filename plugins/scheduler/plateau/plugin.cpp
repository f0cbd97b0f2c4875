// Registers the plateau learning-rate schedule.
#include "chestlab/sdk.h"
#include "plateau.h"

namespace {

using namespace chestlab;

ComponentInfo plateau_info() {
  ComponentInfo info;
  info.kind = Kind::Scheduler;
  info.name = "plateau";
  info.version = "1.0.0";
  info.description = "PyTorch ReduceLROnPlateau on the experiment's monitor metric (observed after each validation)";
  info.params = {
      param_string("mode", "min",
                   "direction of the monitored metric, which is the experiment's monitor metric: "
                   "\"min\" when lower is better (a loss), \"max\" when higher is better (mean_iou)")
          .one_of({"min", "max"}),
      param_float("factor", 0.1, "new_lr = lr * factor at a reduction (PyTorch refuses factor >= 1)")
          .at_least(0.0)
          .below(1.0),
      param_int("patience", 10, "epochs without improvement tolerated; the next one reduces the rate").at_least(0),
      param_float("threshold", 1e-4, "minimum change that counts as an improvement").at_least(0.0),
      param_string("threshold_mode", "rel",
                   "\"rel\": better than best * (1 -/+ threshold); \"abs\": better than best -/+ threshold")
          .one_of({"rel", "abs"}),
      param_int("cooldown", 0, "epochs after a reduction during which bad epochs are not counted").at_least(0),
      param_float("min_lr", 0.0, "lower bound of the rate").at_least(0.0),
      param_float("eps", 1e-8, "a reduction smaller than eps is skipped").at_least(0.0),
  };
  info.tags["unit"] = "epoch";
  return info;
}

plateau::PlateauOptions plateau_options(const Params& p) {
  plateau::PlateauOptions o;
  o.maximize = p.str("mode") == "max";
  o.factor = p.real("factor");
  o.patience = p.integer("patience");
  o.threshold = p.real("threshold");
  o.relative_threshold = p.str("threshold_mode") == "rel";
  o.cooldown = p.integer("cooldown");
  o.min_lr = p.real("min_lr");
  o.eps = p.real("eps");
  return o;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_scheduler(plateau_info(),
                          [](const Params& p) { return std::make_shared<plateau::PlateauSchedule>(plateau_options(p)); });
}

// Registers the step-wise learning-rate schedules step_exponential, step and plateau.
#include "chestlab/sdk.h"
#include "step_schedules.h"

namespace {

using namespace chestlab;
using namespace chestlab::step_schedules;

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

// A decay factor of 0 would stop training altogether.
ParamSpec gamma_param() { return param_float("gamma", 0.1, "factor applied to the rate at each decay").above(0.0); }

void add_step_exponential(Registrar& registrar) {
  registrar.add_scheduler(
      schedule_info("step_exponential",
                    "Course notebook's schedule: lr for hold_epochs epochs, then x gamma every epoch: "
                    "lr * gamma^max(0, epoch - hold_epochs + 1), epoch 0-based",
                    {param_int("hold_epochs", 20,
                               "epochs run at the optimizer's lr before the decay starts (Keras: "
                               "`lr if epoch < hold_epochs else lr * gamma`)")
                         .at_least(0),
                     gamma_param()}),
      [](const Params& p) {
        return std::make_shared<StepExponentialSchedule>(p.integer("hold_epochs"), p.real("gamma"));
      });
}

void add_step(Registrar& registrar) {
  registrar.add_scheduler(
      schedule_info("step", "PyTorch StepLR: lr * gamma^floor(epoch / step_size), epoch 0-based",
                    {param_required("step_size", ParamType::Int, "epochs between two decays").at_least(1),
                     gamma_param()}),
      [](const Params& p) {
        return std::make_shared<StepSchedule>(p.integer("step_size"), p.real("gamma"));
      });
}

PlateauOptions plateau_options(const Params& p) {
  PlateauOptions o;
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

void add_plateau(Registrar& registrar) {
  registrar.add_scheduler(
      schedule_info(
          "plateau",
          "PyTorch ReduceLROnPlateau on the experiment's monitor metric (observed after each validation)",
          {param_string("mode", "min",
                        "direction of the monitored metric, which is the experiment's monitor metric: "
                        "\"min\" when lower is better (a loss), \"max\" when higher is better (mean_iou)")
               .one_of({"min", "max"}),
           param_float("factor", 0.1, "new_lr = lr * factor at a reduction (PyTorch refuses factor >= 1)")
               .at_least(0.0)
               .below(1.0),
           param_int("patience", 10, "epochs without improvement tolerated; the next one reduces the rate")
               .at_least(0),
           param_float("threshold", 1e-4, "minimum change that counts as an improvement").at_least(0.0),
           param_string("threshold_mode", "rel",
                        "\"rel\": better than best * (1 -/+ threshold); \"abs\": better than best -/+ threshold")
               .one_of({"rel", "abs"}),
           param_int("cooldown", 0, "epochs after a reduction during which bad epochs are not counted")
               .at_least(0),
           param_float("min_lr", 0.0, "lower bound of the rate").at_least(0.0),
           param_float("eps", 1e-8, "a reduction smaller than eps is skipped").at_least(0.0)}),
      [](const Params& p) { return std::make_shared<PlateauSchedule>(plateau_options(p)); });
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  add_step_exponential(registrar);
  add_step(registrar);
  add_plateau(registrar);
}

// plateau: PyTorch's ReduceLROnPlateau, which follows the monitored metric and so keeps
// state for resume.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "chestlab/scheduler.h"

namespace chestlab::plateau {

struct PlateauOptions {
  bool maximize = false;            // mode = "max": the monitored value should rise
  double factor = 0.1;              // new_lr = lr * factor, in [0, 1)
  std::int64_t patience = 10;       // bad epochs tolerated before a reduction
  double threshold = 1e-4;          // how much better counts as an improvement
  bool relative_threshold = true;   // threshold_mode = "rel" (else "abs")
  std::int64_t cooldown = 0;        // epochs after a reduction during which bad epochs are not counted
  double min_lr = 0.0;              // lower bound of the rate
  double eps = 1e-8;                // reductions smaller than this are skipped
};

// PyTorch's ReduceLROnPlateau (torch.optim.lr_scheduler, identical in 1.13 and 2.x), fed by
// observe() after each validation. Per observed value v:
//   if better(v, best): best = v, bad_epochs = 0      else: bad_epochs += 1
//   if cooldown_counter > 0: cooldown_counter -= 1, bad_epochs = 0
//   if bad_epochs > patience:
//       new = max(lr * factor, min_lr); if lr - new > eps: lr = new
//       cooldown_counter = cooldown, bad_epochs = 0
// where better(v, best) is, for mode min: v < best * (1 - threshold) (rel) or
// v < best - threshold (abs); for mode max: v > best * (1 + threshold) (rel) or
// v > best + threshold (abs). best starts at +inf (min) or -inf (max). A NaN value is never
// better, so it counts as a bad epoch.
// The rate starts at the optimizer's lr (ScheduleState::base_lr of the first lr() call).
// The host passes the experiment's monitor metric, so `mode` must match that metric's
// direction: "min" for losses, "max" for scores such as mean_iou.
class PlateauSchedule : public Scheduler {
 public:
  explicit PlateauSchedule(PlateauOptions options);
  double lr(const ScheduleState& state) override;
  void observe(std::int64_t epoch, double monitored) override;
  // One line, e.g. "plateau/1 lr=0.001 best=0.25 bad_epochs=2 cooldown_counter=0"; numbers
  // are written in shortest round-trip form so a resumed run continues bit-identically.
  std::string save_state() const override;
  // Accepts what save_state() wrote, or "" (a fresh start). Throws std::runtime_error
  // naming the offending field for anything else.
  void load_state(const std::string& state) override;

 private:
  bool better(double value) const;
  void reduce();

  PlateauOptions options_;
  std::optional<double> current_lr_;  // unset until the first lr() call tells the base rate
  double best_;
  std::int64_t bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
};

}  // namespace chestlab::plateau

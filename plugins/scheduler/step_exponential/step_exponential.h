// step_exponential: the course notebook's Keras schedule, a pure function of the epoch (no
// saved state).
#pragma once

#include <cstdint>

#include "chestlab/scheduler.h"

namespace chestlab::step_exponential {

// The course notebook's Keras schedule
//   LearningRateScheduler(lambda epoch, lr: lr if epoch < hold else lr * gamma)
// Keras calls it at the start of every epoch (0-based) with the *current* rate, so the
// factors compound: epochs 0 .. hold-1 run at base_lr, epoch hold at base_lr * gamma,
// epoch hold+1 at base_lr * gamma^2, ... In closed form (epoch 0-based):
//   lr(epoch) = base_lr * gamma^max(0, epoch - hold + 1)
// With hold = 20, gamma = 0.1 and lr = 1e-3: epoch 19 -> 1e-3, 20 -> 1e-4, 21 -> 1e-5.
class StepExponentialSchedule : public Scheduler {
 public:
  StepExponentialSchedule(std::int64_t hold_epochs, double gamma) : hold_epochs_(hold_epochs), gamma_(gamma) {}
  double lr(const ScheduleState& state) override;

 private:
  std::int64_t hold_epochs_;
  double gamma_;
};

}  // namespace chestlab::step_exponential

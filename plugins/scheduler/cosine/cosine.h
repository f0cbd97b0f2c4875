// cosine: the RSNA kernel's per-epoch cosine annealing, a pure function of ScheduleState
// (no saved state).
#pragma once

#include "chestlab/scheduler.h"

namespace chestlab::cosine {

// lr = min_lr + (base_lr - min_lr) * (cos(pi * epoch / epochs) + 1) / 2, epoch 0-based,
// so epoch 0 runs at base_lr and the last epoch just above min_lr.
class CosineSchedule : public Scheduler {
 public:
  explicit CosineSchedule(double min_lr) : min_lr_(min_lr) {}
  // Throws ConfigError when min_lr exceeds the optimizer's lr (the schedule would rise).
  double lr(const ScheduleState& state) override;

 private:
  double min_lr_;
};

}  // namespace chestlab::cosine

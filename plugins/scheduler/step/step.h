// step: PyTorch's StepLR, a pure function of the epoch (no saved state).
#pragma once

#include <cstdint>

#include "chestlab/scheduler.h"

namespace chestlab::step {

// lr(epoch) = base_lr * gamma^floor(epoch / step_size), epoch 0-based.
class StepSchedule : public Scheduler {
 public:
  StepSchedule(std::int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {}
  double lr(const ScheduleState& state) override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

}  // namespace chestlab::step

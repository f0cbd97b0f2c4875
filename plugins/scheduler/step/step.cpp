#include <algorithm>
#include <cmath>

#include "step_schedules.h"

namespace chestlab::step_schedules {

double StepExponentialSchedule::lr(const ScheduleState& state) {
  const std::int64_t decays = std::max<std::int64_t>(0, state.epoch - hold_epochs_ + 1);
  return state.base_lr * std::pow(gamma_, static_cast<double>(decays));
}

double StepSchedule::lr(const ScheduleState& state) {
  const std::int64_t decays = state.epoch / step_size_;
  return state.base_lr * std::pow(gamma_, static_cast<double>(decays));
}

}  // namespace chestlab::step_schedules

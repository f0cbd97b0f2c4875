#include "step_exponential.h"

#include <algorithm>
#include <cmath>

namespace chestlab::step_exponential {

double StepExponentialSchedule::lr(const ScheduleState& state) {
  const std::int64_t decays = std::max<std::int64_t>(0, state.epoch - hold_epochs_ + 1);
  return state.base_lr * std::pow(gamma_, static_cast<double>(decays));
}

}  // namespace chestlab::step_exponential

#include "step.h"

#include <cmath>

namespace chestlab::step {

double StepSchedule::lr(const ScheduleState& state) {
  const std::int64_t decays = state.epoch / step_size_;
  return state.base_lr * std::pow(gamma_, static_cast<double>(decays));
}

}  // namespace chestlab::step

#include "cosine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "chestlab/errors.h"

namespace chestlab::cosine {

double CosineSchedule::lr(const ScheduleState& state) {
  if (min_lr_ > state.base_lr) {
    throw ConfigError(fmt::format(
        "scheduler 'cosine': min_lr = {} is larger than the optimizer's lr = {}; set min_lr <= lr",
        min_lr_, state.base_lr));
  }
  const double pi = std::acos(-1.0);
  const double epochs = static_cast<double>(std::max<std::int64_t>(state.epochs, 1));
  const double factor = (std::cos(pi * static_cast<double>(state.epoch) / epochs) + 1.0) / 2.0;
  return min_lr_ + (state.base_lr - min_lr_) * factor;
}

}  // namespace chestlab::cosine

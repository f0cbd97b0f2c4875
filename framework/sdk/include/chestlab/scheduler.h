// Learning-rate schedules. The host asks for the rate before each epoch (StepUnit::Epoch)
// or before each batch (StepUnit::Batch) and sets it on every parameter group.
#pragma once

#include <cstdint>
#include <string>

namespace chestlab {

enum class StepUnit { Epoch, Batch };

struct ScheduleState {
  std::int64_t epoch = 0;            // 0-based
  std::int64_t epochs = 1;           // planned epochs of the fold
  std::int64_t step = 0;             // 0-based batch index within the epoch
  std::int64_t steps_per_epoch = 1;
  double base_lr = 1e-3;             // the optimizer's configured lr
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual StepUnit unit() const { return StepUnit::Epoch; }
  virtual double lr(const ScheduleState& state) = 0;
  // Called after each epoch's validation with the monitored metric (for plateau-style rules).
  virtual void observe(std::int64_t /*epoch*/, double /*monitored*/) {}
  // Opaque state for resume; schedules that are pure functions of ScheduleState keep none.
  virtual std::string save_state() const { return {}; }
  virtual void load_state(const std::string& /*state*/) {}
};

}  // namespace chestlab

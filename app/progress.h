// Training progress on the terminal: a live bar per epoch when stdout is a terminal,
// one plain line per epoch otherwise (logs, CI, pipes).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace chestlab::app {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool enabled);
  // `loss()` is read only when the bar is drawn: it waits for the device.
  void batch(int fold, std::int64_t epoch, std::int64_t epochs, std::size_t batch, std::size_t batches,
             const std::function<double()>& loss, double images_per_second);
  // Ends the live bar (if any) and prints `line`.
  void line(const std::string& text);

 private:
  bool enabled_;
  bool tty_;
  bool bar_open_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
  std::chrono::steady_clock::time_point epoch_start_{};
};

}  // namespace chestlab::app

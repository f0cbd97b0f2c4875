#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace chestlab::app {

ProgressPrinter::ProgressPrinter(bool enabled) : enabled_(enabled), tty_(isatty(STDOUT_FILENO) != 0) {}

void ProgressPrinter::batch(int fold, std::int64_t epoch, std::int64_t epochs, std::size_t batch,
                            std::size_t batches, const std::function<double()>& loss, double images_per_second) {
  if (!enabled_ || !tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (batch <= 1) epoch_start_ = now;
  if (batch != batches && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const int width = 24;
  const int filled = batches ? static_cast<int>(width * batch / batches) : width;
  // ETA from the batch rate so far: remaining batches times the mean time per batch.
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double remaining =
      batch > 1 ? elapsed / static_cast<double>(batch - 1) * static_cast<double>(batches - batch) : 0;
  std::fprintf(stdout, "\r  fold %d epoch %lld/%lld [%s%s] %zu/%zu  %.1f img/s  loss %.4f  ETA %.0fs   ",
               fold, static_cast<long long>(epoch + 1), static_cast<long long>(epochs),
               std::string(static_cast<std::size_t>(filled), '#').c_str(),
               std::string(static_cast<std::size_t>(width - filled), '.').c_str(), batch, batches,
               images_per_second, loss(), remaining);
  std::fflush(stdout);
  bar_open_ = true;
}

void ProgressPrinter::line(const std::string& text) {
  if (!enabled_) return;
  if (bar_open_) std::fputs("\r\033[K", stdout);
  bar_open_ = false;
  std::fputs((text + "\n").c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace chestlab::app

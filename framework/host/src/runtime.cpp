#include "chestlab/host/runtime.h"

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "chestlab/errors.h"

namespace chestlab {

torch::Device choose_device(const std::string& name) {
  if (name.empty() || name == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw ConfigError(fmt::format("device '{}' requested but this LibTorch sees no CUDA device "
                                    "(use device = \"auto\" or \"cpu\")", name));
    torch::Device device(name);
    if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))
      throw ConfigError(fmt::format("device '{}' requested but only {} CUDA device(s) exist", name,
                                    torch::cuda::device_count()));
    return device;
  }
  throw ConfigError(fmt::format("unknown device '{}' (allowed: auto, cpu, cuda, cuda:N)", name));
}

int configure_threads(std::int64_t configured) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (configured > 0) threads = static_cast<int>(configured);
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0) threads = std::atoi(env);
  threads = std::max(threads, 1);
  torch::set_num_threads(threads);
  // Loader workers already decode samples in parallel; OpenCV's own pool inside each
  // resize or blur would only compete with LibTorch for the same cores.
  cv::setNumThreads(1);
  return threads;
}

void configure_determinism(bool deterministic) {
  at::globalContext().setDeterministicAlgorithms(deterministic, /*warn_only=*/true);
  if (torch::cuda::is_available()) at::globalContext().setBenchmarkCuDNN(!deterministic);
}

namespace {
std::atomic<int> g_signals{0};
extern "C" void on_signal(int sig) {
  if (g_signals.fetch_add(1) >= 1) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}
}  // namespace

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}
bool interrupt_requested() { return g_signals.load() > 0; }
void request_interrupt() { g_signals.store(1); }
void clear_interrupt() { g_signals.store(0); }

}  // namespace chestlab

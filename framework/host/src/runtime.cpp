#include "chestlab/host/runtime.h"

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <mutex>
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

// A process started by `chestlab sweep` is told its parent's pid. When that parent ends (even
// by kill -9, which it cannot pass on), this process is re-parented and getppid() changes:
// then it stops as on SIGTERM, after its current batch, with the run marked interrupted, so no
// orphan trains on. Polling getppid() was chosen over PR_SET_PDEATHSIG, which fires when the
// parent *thread* that started us ends (not the process) and cannot be set through
// posix_spawn, and over a pipe, whose write end any other process the parent starts could
// hold open. A quarter second is nothing next to a batch.
void watch_parent_from_environment() {
  const char* text = std::getenv(kParentPidVariable);
  if (!text || !*text) return;
  char* end = nullptr;
  const long expected = std::strtol(text, &end, 10);
  if (*end || expected <= 1) return;
  std::thread([expected] {
    while (static_cast<long>(getppid()) == expected) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    request_interrupt();
  }).detach();
}

}  // namespace

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  static std::once_flag watching;
  std::call_once(watching, watch_parent_from_environment);
}
bool interrupt_requested() { return g_signals.load() > 0; }
void request_interrupt() { g_signals.store(1); }
void clear_interrupt() { g_signals.store(0); }

}  // namespace chestlab

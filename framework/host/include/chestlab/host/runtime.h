// Process-wide runtime settings: compute device, thread count, determinism, interrupts.
#pragma once

#include <torch/types.h>

#include <string>

namespace chestlab {

// "auto" -> CUDA when LibTorch sees a GPU, else CPU; "cpu"; "cuda"; "cuda:N".
// Throws ConfigError for an unknown name or a CUDA device that is not there.
torch::Device choose_device(const std::string& name);

// Thread count for LibTorch's intra-op pool: $OMP_NUM_THREADS when set, else `configured`
// when > 0, else the machine's cores (LibTorch's own default here is 1). Returns it.
int configure_threads(std::int64_t configured);

// Deterministic algorithms on (CPU results then repeat bit for bit).
void configure_determinism(bool deterministic);

// SIGINT/SIGTERM set a flag the trainer polls after every batch; a second signal ends
// the process at once. When $CHESTLAB_PARENT_PID is set (`chestlab sweep` sets it for the
// runs it starts), the end of that process sets the flag too: a sweep killed with kill -9
// leaves no run training on.
inline constexpr const char* kParentPidVariable = "CHESTLAB_PARENT_PID";
void install_interrupt_handlers();
bool interrupt_requested();
void request_interrupt();   // for tests
void clear_interrupt();

}  // namespace chestlab

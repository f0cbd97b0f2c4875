// Precompiled once per build and reused by every LibTorch target (see framework/CMakeLists.txt).
#pragma once
#include <torch/torch.h>

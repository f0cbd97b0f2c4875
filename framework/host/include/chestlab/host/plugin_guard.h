// Every call from the host into plugin code goes through plugin_call: whatever the plugin
// throws (chestlab's errors, LibTorch's c10::Error, any std::exception, anything else)
// leaves it as a host error that names the component and the entry point, keeps the
// plugin's message, and keeps the exit code its class deserves (ConfigError 2, DataError 3,
// anything else 1). The standard exception classes (std::out_of_range, ...) are kept too;
// c10::Error and anything else become std::runtime_error. The message is copied into host-owned strings, so nothing that unwinds
// past this point refers to the plugin's code or data.
//
// The registry wraps datasets, losses, metrics and schedulers in guarding proxies (see
// guarded_components.h), so their callers need nothing; models are LibTorch modules whose
// parameter names must not change, so the few places that run a model call plugin_call.
#pragma once

#include <string>
#include <utility>

#include "chestlab/component.h"

namespace chestlab {

// Rethrows the exception in flight (call only inside a catch block) as described above.
[[noreturn]] void rethrow_from_plugin(Kind kind, const std::string& component, const char* entry);

template <class F>
decltype(auto) plugin_call(Kind kind, const std::string& component, const char* entry, F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (...) {
    rethrow_from_plugin(kind, component, entry);
  }
}

}  // namespace chestlab

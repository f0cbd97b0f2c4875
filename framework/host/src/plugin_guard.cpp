#include "chestlab/host/plugin_guard.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <exception>
#include <new>
#include <stdexcept>

#include "chestlab/errors.h"
#include "chestlab/params.h"

namespace chestlab {

namespace {

// "model 'unet' (forward)": where the error arose, for the front of the message.
std::string origin(Kind kind, const std::string& component, const char* entry) {
  return fmt::format("{} '{}' ({})", to_string(kind), component, entry);
}

// Plugins often name themselves already ("resnet_seg: input size ...", "model 'retinanet':
// ..."); saying it twice helps nobody.
bool names_itself(const std::string& message, Kind kind, const std::string& component) {
  return message.rfind(component + ":", 0) == 0 || message.rfind(component + " ", 0) == 0 ||
         message.rfind(fmt::format("{} '{}'", to_string(kind), component), 0) == 0;
}

std::string with_origin(const std::string& message, Kind kind, const std::string& component, const char* entry) {
  if (names_itself(message, kind, component)) return fmt::format("{} [in {}]", message, entry);
  return fmt::format("{}: {}", origin(kind, component, entry), message);
}

}  // namespace

void rethrow_from_plugin(Kind kind, const std::string& component, const char* entry) {
  try {
    throw;
  } catch (const ConfigError& e) {
    throw ConfigError(with_origin(e.what(), kind, component, entry));
  } catch (const DataError& e) {
    // The file stays first (what a user acts on, what skip-on-error records); the reason
    // says which component refused it.
    throw DataError(e.file, fmt::format("{} (in {})", e.reason_text, origin(kind, component, entry)));
  } catch (const PluginError& e) {
    throw PluginError(with_origin(e.what(), kind, component, entry));
  } catch (const ParamError& e) {
    // The plugin asked for a parameter its own schema does not declare: its bug, not the user's.
    throw std::runtime_error(fmt::format("{}: plugin bug: {}", origin(kind, component, entry), e.what()));
  } catch (const c10::Error& e) {
    // LibTorch's message without the C++ backtrace that some builds append.
    throw std::runtime_error(
        fmt::format("{}: LibTorch error: {}", origin(kind, component, entry), e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw std::runtime_error(fmt::format("{}: out of memory (std::bad_alloc)", origin(kind, component, entry)));
  } catch (const std::out_of_range& e) {
    // The standard classes are kept: a caller may tell an index out of range from a bad
    // argument, as the plugins' own tests do through the registry.
    throw std::out_of_range(with_origin(e.what(), kind, component, entry));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(with_origin(e.what(), kind, component, entry));
  } catch (const std::length_error& e) {
    throw std::length_error(with_origin(e.what(), kind, component, entry));
  } catch (const std::domain_error& e) {
    throw std::domain_error(with_origin(e.what(), kind, component, entry));
  } catch (const std::logic_error& e) {
    throw std::logic_error(with_origin(e.what(), kind, component, entry));
  } catch (const std::range_error& e) {
    throw std::range_error(with_origin(e.what(), kind, component, entry));
  } catch (const std::overflow_error& e) {
    throw std::overflow_error(with_origin(e.what(), kind, component, entry));
  } catch (const std::underflow_error& e) {
    throw std::underflow_error(with_origin(e.what(), kind, component, entry));
  } catch (const std::exception& e) {
    throw std::runtime_error(with_origin(e.what(), kind, component, entry));
  } catch (...) {
    throw std::runtime_error(
        fmt::format("{}: threw something that is not a std::exception (a plugin bug)", origin(kind, component, entry)));
  }
}

}  // namespace chestlab

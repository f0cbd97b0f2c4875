// Parameter schemas and validated parameter values. Torch-free: the experiment-file
// validator, `chestlab plugins describe` and the generated docs all read these, so a
// component's schema is the single source of truth for what it accepts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace chestlab {

enum class ParamType { Bool, Int, Float, String, IntList, FloatList, StringList };

const char* to_string(ParamType type);

using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                                std::vector<double>, std::vector<std::string>>;

// Renders a value as TOML would write it ("true", "3", "0.5", "\"x\"", "[1, 2]").
std::string to_toml(const ParamValue& value);

// One parameter of a component. A spec without a default is required.
struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Float;
  std::optional<ParamValue> default_value;
  std::optional<double> min;            // inclusive; for numbers and each element of number lists
  std::optional<double> max;            // inclusive
  std::vector<std::string> choices;     // allowed strings (String and StringList); empty = any
  std::string doc;

  bool required() const { return !default_value.has_value(); }
  // "integer in [1, 64]", "one of: max, mean", "float >= 0", ... for error messages and docs.
  std::string allowed() const;
};

// Fluent builders so a plugin's schema reads like a table:
//   param_int("channels", 32, "width of the stem").range(1, 1024)
struct ParamBuilder {
  ParamSpec spec;
  ParamBuilder& range(double lo, double hi) { spec.min = lo; spec.max = hi; return *this; }
  ParamBuilder& at_least(double lo) { spec.min = lo; return *this; }
  ParamBuilder& at_most(double hi) { spec.max = hi; return *this; }
  ParamBuilder& one_of(std::vector<std::string> c) { spec.choices = std::move(c); return *this; }
  operator ParamSpec() const { return spec; }
};
ParamBuilder param_bool(std::string name, bool def, std::string doc);
ParamBuilder param_int(std::string name, std::int64_t def, std::string doc);
ParamBuilder param_float(std::string name, double def, std::string doc);
ParamBuilder param_string(std::string name, std::string def, std::string doc);
ParamBuilder param_ints(std::string name, std::vector<std::int64_t> def, std::string doc);
ParamBuilder param_floats(std::string name, std::vector<double> def, std::string doc);
ParamBuilder param_strings(std::string name, std::vector<std::string> def, std::string doc);
// A parameter with no default: the experiment file must give it.
ParamBuilder param_required(std::string name, ParamType type, std::string doc);

using Schema = std::vector<ParamSpec>;

// Thrown by Params accessors when a plugin asks for a name or type its schema does not
// declare: a programming error in the plugin, not a user error.
struct ParamError : std::logic_error {
  using std::logic_error::logic_error;
};

// Validated values, every default filled in. What a component's factory receives.
class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, ParamValue> values) : values_(std::move(values)) {}

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  bool boolean(const std::string& name) const { return get<bool>(name); }
  std::int64_t integer(const std::string& name) const { return get<std::int64_t>(name); }
  // Accepts an Int value too: `lr = 1` in TOML is a float parameter of value 1.0.
  double real(const std::string& name) const;
  const std::string& str(const std::string& name) const { return get<std::string>(name); }
  const std::vector<std::int64_t>& integers(const std::string& name) const {
    return get<std::vector<std::int64_t>>(name);
  }
  std::vector<double> reals(const std::string& name) const;
  const std::vector<std::string>& strings(const std::string& name) const {
    return get<std::vector<std::string>>(name);
  }

  const std::map<std::string, ParamValue>& values() const { return values_; }
  void set(const std::string& name, ParamValue value) { values_[name] = std::move(value); }

 private:
  template <class T>
  const T& get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw ParamError("parameter '" + name + "' is not set");
    if (auto* v = std::get_if<T>(&it->second)) return *v;
    throw ParamError("parameter '" + name + "' has another type");
  }
  std::map<std::string, ParamValue> values_;
};

}  // namespace chestlab

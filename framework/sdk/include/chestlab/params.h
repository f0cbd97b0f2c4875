// Parameter schemas and validated parameter values. Torch-free: the experiment-file
// validator, `chestlab plugins describe` and the generated docs all read these, so a
// component's schema is the single source of truth for what it accepts.
#pragma once

#include <cstdint>
#include <functional>
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
  std::optional<double> min;            // for numbers and each element of number lists
  std::optional<double> max;
  bool min_exclusive = false;           // true: the value must be > min (else >= min)
  bool max_exclusive = false;           // true: the value must be < max (else <= max)
  std::vector<std::string> choices;     // allowed strings (String and StringList); empty = any
  std::string doc;
  // Floats are finite unless a parameter says otherwise: `lr = inf` or `nan` in an experiment
  // file is a typo to refuse, not a value to train with. With this set, inf is checked against
  // the bounds and nan passes only where there are none.
  bool nonfinite_ok = false;

  bool required() const { return !default_value.has_value(); }
  // Whether a number (or one element of a number list) lies within min and max; never for
  // inf or nan unless `nonfinite_ok` (then nan only where the spec has no bound at all).
  bool in_bounds(double value) const;
  // "integer in [1, 64]", "one of: max, mean", "float >= 0", "float in (0, 1)", ... for error
  // messages and docs.
  std::string allowed() const;
};

// Fluent builders so a plugin's schema reads like a table:
//   param_int("channels", 32, "width of the stem").range(1, 1024)
// Bounds combine: param_float("prior", 0.01, "...").above(0.0).below(1.0) is "float in (0, 1)".
struct ParamBuilder {
  ParamSpec spec;
  ParamBuilder& range(double lo, double hi) { return at_least(lo).at_most(hi); }
  ParamBuilder& at_least(double lo) { spec.min = lo; spec.min_exclusive = false; return *this; }
  ParamBuilder& at_most(double hi) { spec.max = hi; spec.max_exclusive = false; return *this; }
  ParamBuilder& above(double lo) { spec.min = lo; spec.min_exclusive = true; return *this; }
  ParamBuilder& below(double hi) { spec.max = hi; spec.max_exclusive = true; return *this; }
  ParamBuilder& one_of(std::vector<std::string> c) { spec.choices = std::move(c); return *this; }
  ParamBuilder& accepts_nonfinite() { spec.nonfinite_ok = true; return *this; }
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

class Params;

// A rule on a component's parameters that no single ParamSpec can state: a relation
// between parameters (bg_iou <= fg_iou), a set of allowed numbers, a list length. Checked
// with the schema, before any factory runs, so a plugin never re-checks its parameters.
struct ParamCheck {
  // The parameters the rule reads, most telling first: an experiment file's error points
  // at the first of them the file sets, and is reported under that key. A key of another
  // section is written "section.key" ("dataset.image_size", "cv.folds") and reaches `check`
  // under that name; such a rule is checked once the whole experiment file is read, and is
  // skipped when that key does not exist there (a dataset without image_size).
  std::vector<std::string> keys;
  // The rule in a few words, for `plugins describe` and the docs, e.g. "bg_iou <= fg_iou".
  std::string doc;
  // "" when the values are fine, else what is wrong, read after "<section>.<key>: ", e.g.
  // "must not exceed fg_iou = 0.5, got 0.6". Receives validated values, defaults filled in.
  std::function<std::string(const Params&)> check;
};
ParamCheck param_check(std::vector<std::string> keys, std::string doc,
                       std::function<std::string(const Params&)> check);

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

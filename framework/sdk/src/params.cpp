#include "chestlab/params.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>

namespace chestlab {

const char* to_string(ParamType type) {
  switch (type) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "integer";
    case ParamType::Float: return "float";
    case ParamType::String: return "string";
    case ParamType::IntList: return "list of integers";
    case ParamType::FloatList: return "list of floats";
    case ParamType::StringList: return "list of strings";
  }
  return "?";
}

namespace {

// A TOML basic string that reads back to exactly `s` (valid UTF-8, as every string TOML
// gives us is). TOML forbids the control characters other than tab inside one, so each is
// escaped; everything else, tab and non-ASCII included, is written as it is, which keeps the
// text (and so the config hashes made from it) what it always was for such strings.
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += c; continue;
      default: break;
    }
    if (u < 0x20 || u == 0x7f) out += fmt::format("\\u{:04X}", static_cast<unsigned>(u));
    else out += c;
  }
  return out + "\"";
}

std::string real_to_toml(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Shortest text that reads back to the same double, always with a '.' or exponent so
  // that TOML keeps it a float.
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

template <class T, class F>
std::string list_to_toml(const std::vector<T>& items, F&& one) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += one(items[i]);
  }
  return out + "]";
}

std::string number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

}  // namespace

std::string to_toml(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return real_to_toml(d); }
    std::string operator()(const std::string& s) const { return quote(s); }
    std::string operator()(const std::vector<std::int64_t>& v) const {
      return list_to_toml(v, [](std::int64_t i) { return std::to_string(i); });
    }
    std::string operator()(const std::vector<double>& v) const { return list_to_toml(v, real_to_toml); }
    std::string operator()(const std::vector<std::string>& v) const { return list_to_toml(v, quote); }
  };
  return std::visit(Visitor{}, value);
}

std::string ParamSpec::allowed() const {
  std::string out = to_string(type);
  if (!choices.empty()) {
    out += " (one of: ";
    for (std::size_t i = 0; i < choices.size(); ++i) out += (i ? ", " : "") + choices[i];
    out += ")";
  }
  const bool elementwise = type == ParamType::IntList || type == ParamType::FloatList;
  const std::string what = elementwise ? " with every element" : "";
  if (min && max)
    out += fmt::format("{} in {}{}, {}{}", what, min_exclusive ? "(" : "[", number(*min), number(*max),
                       max_exclusive ? ")" : "]");
  else if (min) out += fmt::format("{} {} {}", what, min_exclusive ? ">" : ">=", number(*min));
  else if (max) out += fmt::format("{} {} {}", what, max_exclusive ? "<" : "<=", number(*max));
  return out;
}

bool ParamSpec::in_bounds(double value) const {
  if (!std::isfinite(value) && !nonfinite_ok) return false;
  if (std::isnan(value)) return !min && !max;
  const bool above_min = !min || (min_exclusive ? value > *min : value >= *min);
  const bool below_max = !max || (max_exclusive ? value < *max : value <= *max);
  return above_min && below_max;
}

ParamCheck param_check(std::vector<std::string> keys, std::string doc,
                       std::function<std::string(const Params&)> check) {
  return ParamCheck{std::move(keys), std::move(doc), std::move(check)};
}

namespace {
ParamBuilder make(std::string name, ParamType type, std::optional<ParamValue> def, std::string doc) {
  ParamBuilder b;
  b.spec.name = std::move(name);
  b.spec.type = type;
  b.spec.default_value = std::move(def);
  b.spec.doc = std::move(doc);
  return b;
}
}  // namespace

ParamBuilder param_bool(std::string n, bool d, std::string doc) {
  return make(std::move(n), ParamType::Bool, ParamValue{d}, std::move(doc));
}
ParamBuilder param_int(std::string n, std::int64_t d, std::string doc) {
  return make(std::move(n), ParamType::Int, ParamValue{d}, std::move(doc));
}
ParamBuilder param_float(std::string n, double d, std::string doc) {
  return make(std::move(n), ParamType::Float, ParamValue{d}, std::move(doc));
}
ParamBuilder param_string(std::string n, std::string d, std::string doc) {
  return make(std::move(n), ParamType::String, ParamValue{std::move(d)}, std::move(doc));
}
ParamBuilder param_ints(std::string n, std::vector<std::int64_t> d, std::string doc) {
  return make(std::move(n), ParamType::IntList, ParamValue{std::move(d)}, std::move(doc));
}
ParamBuilder param_floats(std::string n, std::vector<double> d, std::string doc) {
  return make(std::move(n), ParamType::FloatList, ParamValue{std::move(d)}, std::move(doc));
}
ParamBuilder param_strings(std::string n, std::vector<std::string> d, std::string doc) {
  return make(std::move(n), ParamType::StringList, ParamValue{std::move(d)}, std::move(doc));
}
ParamBuilder param_required(std::string n, ParamType type, std::string doc) {
  return make(std::move(n), type, std::nullopt, std::move(doc));
}

double Params::real(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw ParamError("parameter '" + name + "' is not set");
  if (auto* d = std::get_if<double>(&it->second)) return *d;
  if (auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  throw ParamError("parameter '" + name + "' is not a number");
}

std::vector<double> Params::reals(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw ParamError("parameter '" + name + "' is not set");
  if (auto* d = std::get_if<std::vector<double>>(&it->second)) return *d;
  if (auto* i = std::get_if<std::vector<std::int64_t>>(&it->second))
    return std::vector<double>(i->begin(), i->end());
  throw ParamError("parameter '" + name + "' is not a list of numbers");
}

}  // namespace chestlab

#include "chestlab/param_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "chestlab/errors.h"

namespace chestlab {

namespace {

std::string type_of(const ParamValue& v) {
  switch (v.index()) {
    case 0: return "bool";
    case 1: return "integer";
    case 2: return "float";
    case 3: return "string";
    case 4: return "list of integers";
    case 5: return "list of floats";
    default: return "list of strings";
  }
}

bool type_fits(ParamType want, const ParamValue& v) {
  switch (want) {
    case ParamType::Bool: return std::holds_alternative<bool>(v);
    case ParamType::Int: return std::holds_alternative<std::int64_t>(v);
    case ParamType::Float: return std::holds_alternative<double>(v) || std::holds_alternative<std::int64_t>(v);
    case ParamType::String: return std::holds_alternative<std::string>(v);
    case ParamType::IntList: return std::holds_alternative<std::vector<std::int64_t>>(v);
    case ParamType::FloatList:
      return std::holds_alternative<std::vector<double>>(v) ||
             std::holds_alternative<std::vector<std::int64_t>>(v);
    case ParamType::StringList: return std::holds_alternative<std::vector<std::string>>(v);
  }
  return false;
}

bool allowed_choice(const ParamSpec& spec, const std::string& s) {
  return spec.choices.empty() || std::find(spec.choices.begin(), spec.choices.end(), s) != spec.choices.end();
}

}  // namespace

ParamValue coerce_value(const ParamSpec& spec, const ParamValue& value) {
  if (spec.type == ParamType::Float)
    if (auto* i = std::get_if<std::int64_t>(&value)) return static_cast<double>(*i);
  if (spec.type == ParamType::FloatList)
    if (auto* l = std::get_if<std::vector<std::int64_t>>(&value))
      return std::vector<double>(l->begin(), l->end());
  return value;
}

std::string check_value(const ParamSpec& spec, const ParamValue& raw) {
  if (!type_fits(spec.type, raw))
    return fmt::format("expected {}, got {} {}", spec.allowed(), type_of(raw), to_toml(raw));
  ParamValue value = coerce_value(spec, raw);
  auto bad = [&]() { return fmt::format("expected {}, got {}", spec.allowed(), to_toml(value)); };
  auto finite = [&](double x) { return spec.nonfinite_ok || std::isfinite(x); };
  if (auto* d = std::get_if<double>(&value); d && !finite(*d))
    return fmt::format("expected {}, got {} (inf and nan are not accepted here)", spec.allowed(), to_toml(value));
  if (auto* l = std::get_if<std::vector<double>>(&value))
    for (double x : *l)
      if (!finite(x))
        return fmt::format("expected {}, got {} (inf and nan are not accepted here)", spec.allowed(), to_toml(value));
  if (auto* i = std::get_if<std::int64_t>(&value); i && !spec.in_bounds(static_cast<double>(*i))) return bad();
  if (auto* d = std::get_if<double>(&value); d && !spec.in_bounds(*d)) return bad();
  if (auto* s = std::get_if<std::string>(&value); s && !allowed_choice(spec, *s)) return bad();
  if (auto* l = std::get_if<std::vector<std::int64_t>>(&value))
    for (auto x : *l)
      if (!spec.in_bounds(static_cast<double>(x))) return bad();
  if (auto* l = std::get_if<std::vector<double>>(&value))
    for (auto x : *l)
      if (!spec.in_bounds(x)) return bad();
  if (auto* l = std::get_if<std::vector<std::string>>(&value))
    for (const auto& x : *l)
      if (!allowed_choice(spec, x)) return bad();
  return {};
}

Params check_params(const Schema& schema, const std::map<std::string, ParamValue>& given,
                    const std::string& context, const std::vector<ParamCheck>& checks) {
  std::vector<std::string> errors;
  std::vector<std::string> names;
  for (const auto& spec : schema) names.push_back(spec.name);
  Params out;
  for (const auto& [name, value] : given) {
    auto spec = std::find_if(schema.begin(), schema.end(), [&](const ParamSpec& s) { return s.name == name; });
    if (spec == schema.end()) {
      std::string hint = did_you_mean(name, names);
      errors.push_back(fmt::format("{}: unknown parameter '{}'{}", context, name,
                                   hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      continue;
    }
    if (std::string why = check_value(*spec, value); !why.empty())
      errors.push_back(fmt::format("{}: {}: {}", context, name, why));
    else
      out.set(name, coerce_value(*spec, value));
  }
  for (const auto& spec : schema) {
    if (out.has(spec.name) || given.count(spec.name)) continue;
    if (spec.default_value) out.set(spec.name, *spec.default_value);
    else errors.push_back(fmt::format("{}: missing required parameter '{}' ({})", context, spec.name, spec.allowed()));
  }
  // Rules across parameters read every value, so they only mean something once each is valid.
  // A rule that reads another section ("dataset.image_size") is the experiment reader's to
  // check; here only one component's values are known.
  auto reads_other_sections = [](const ParamCheck& rule) {
    return std::any_of(rule.keys.begin(), rule.keys.end(),
                       [](const std::string& k) { return k.find('.') != std::string::npos; });
  };
  if (errors.empty()) {
    for (const ParamCheck& rule : checks) {
      if (reads_other_sections(rule)) continue;
      if (std::string why = rule.check(out); !why.empty())
        errors.push_back(fmt::format("{}: {}: {}", context, rule.keys.empty() ? "parameters" : rule.keys.front(), why));
    }
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    throw ConfigError(all);
  }
  return out;
}

ParamCheck image_size_multiple_of_depth(const std::string& model, const std::string& depth_key) {
  return param_check({"dataset.image_size", depth_key}, "dataset.image_size is a multiple of 2^" + depth_key,
                     [model, depth_key](const Params& p) {
                       const std::int64_t size = p.integer("dataset.image_size");
                       const std::int64_t depth = p.integer(depth_key);
                       const std::int64_t multiple = std::int64_t{1} << depth;
                       if (size % multiple == 0) return std::string();
                       // Rounded to the nearer multiple (up on a tie), never below one multiple.
                       const std::int64_t nearest =
                           std::max(multiple, (size + multiple / 2) / multiple * multiple);
                       return fmt::format("{} is not a multiple of {} for {} {} {}; nearest: {} (or lower model.{})",
                                          size, multiple, model, depth_key, depth, nearest, depth_key);
                     });
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diag = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    return row[b.size()];
  };
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

}  // namespace chestlab

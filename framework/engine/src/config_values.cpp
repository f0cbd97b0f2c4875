// Reading parameter values out of TOML nodes against a Schema, and collecting errors.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <tuple>

#include "chestlab/errors.h"
#include "config_internal.h"

namespace chestlab::config_detail {

// ---- diagnostics -------------------------------------------------------------------------

namespace {
std::string with_key(const std::string& key_path, const std::string& what) {
  return key_path.empty() ? what : key_path + ": " + what;
}
}  // namespace

void Diagnostics::error(const toml::source_region& where, const std::string& key_path,
                        const std::string& what) {
  const bool from_file = !where.path || *where.path == file_name_;
  if (!from_file) {
    error_at(*where.path, key_path, what);
    return;
  }
  const std::string position =
      where.begin.line ? fmt::format("{}:{}:{}", file_name_, where.begin.line, where.begin.column) : file_name_;
  items_.push_back({true, where.begin.line, where.begin.column, position + ": " + with_key(key_path, what)});
}

void Diagnostics::error_at(const std::string& origin, const std::string& key_path, const std::string& what) {
  items_.push_back({false, 0, 0, origin + ": " + with_key(key_path, what)});
}

void Diagnostics::raise() const {
  std::vector<Item> sorted = items_;
  // File errors in reading order, then override errors in the order they were given.
  std::stable_sort(sorted.begin(), sorted.end(), [](const Item& a, const Item& b) {
    if (a.from_file != b.from_file) return a.from_file;
    if (!a.from_file) return false;
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::string message;
  for (const Item& item : sorted) message += (message.empty() ? "" : "\n") + item.text;
  throw ConfigError(message);
}

// ---- sections ----------------------------------------------------------------------------

const toml::node* Section::node(const std::string& key) const { return table ? table->get(key) : nullptr; }

const toml::source_region& Section::where_of(const std::string& key) const {
  const toml::node* n = node(key);
  return n ? n->source() : where;
}

// ---- text helpers ------------------------------------------------------------------------

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

std::vector<std::string> names_of(const Schema& schema) {
  std::vector<std::string> names;
  for (const ParamSpec& spec : schema) names.push_back(spec.name);
  return names;
}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, because
// swapped letters ("modle") are the most common typo.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // Short words tolerate one slip; longer ones about a third of their letters.
  const std::size_t limit = word.size() <= 3 ? 1 : std::max<std::size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t d = edit_distance(lower(word), lower(candidate));
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  auto match = closest_match(word, candidates);
  return match ? fmt::format("; did you mean \"{}\"?", *match) : "";
}

std::string describe(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "string " + to_toml(ParamValue{node.as_string()->get()});
    case toml::node_type::integer: return "integer " + std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point: return "float " + to_toml(ParamValue{node.as_floating_point()->get()});
    case toml::node_type::boolean: return node.as_boolean()->get() ? "boolean true" : "boolean false";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "a list";
    default: return "a date/time";
  }
}

// ---- values ------------------------------------------------------------------------------

namespace {

// Reads one scalar of the spec's (element) type; reports and returns nullopt when wrong.
class ValueReader {
 public:
  ValueReader(const ParamSpec& spec, Diagnostics& diag) : spec_(spec), diag_(diag) {}

  std::optional<bool> boolean(const toml::node& n, const std::string& path) {
    if (auto* b = n.as_boolean()) return b->get();
    return wrong(n, path, describe(n));
  }

  std::optional<std::int64_t> integer(const toml::node& n, const std::string& path) {
    auto* i = n.as_integer();
    if (!i) return wrong(n, path, describe(n));
    if (!spec_.in_bounds(static_cast<double>(i->get()))) return wrong(n, path, std::to_string(i->get()));
    return i->get();
  }

  // An integer is a valid float ("lr = 1"); it is stored as a float so the resolved
  // file reads back identically.
  std::optional<double> real(const toml::node& n, const std::string& path) {
    double v = 0;
    if (auto* f = n.as_floating_point()) v = f->get();
    else if (auto* i = n.as_integer()) v = static_cast<double>(i->get());
    else return wrong(n, path, describe(n));
    if (!std::isfinite(v) && !spec_.nonfinite_ok)
      return wrong(n, path, to_toml(ParamValue{v}) + " (inf and nan are not accepted here)");
    if (!spec_.in_bounds(v)) return wrong(n, path, to_toml(ParamValue{v}));
    return v;
  }

  std::optional<std::string> string(const toml::node& n, const std::string& path) {
    auto* s = n.as_string();
    if (!s) return wrong(n, path, describe(n));
    const std::string& v = s->get();
    const auto& choices = spec_.choices;
    if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end()) {
      diag_.error(n.source(), path,
                  fmt::format("expected {}, got \"{}\"{}", spec_.allowed(), v, did_you_mean(v, choices)));
      return std::nullopt;
    }
    return v;
  }

  template <class T, class ReadOne>
  std::optional<std::vector<T>> list(const toml::node& n, const std::string& path, ReadOne read_one) {
    auto* array = n.as_array();
    if (!array) return wrong(n, path, describe(n));
    std::vector<T> out;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
      auto element = (this->*read_one)((*array)[i], fmt::format("{}[{}]", path, i));
      if (element) out.push_back(*element);
      else ok = false;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  std::optional<ParamValue> read(const toml::node& n, const std::string& path) {
    switch (spec_.type) {
      case ParamType::Bool: return wrap(boolean(n, path));
      case ParamType::Int: return wrap(integer(n, path));
      case ParamType::Float: return wrap(real(n, path));
      case ParamType::String: return wrap(string(n, path));
      case ParamType::IntList: return wrap(list<std::int64_t>(n, path, &ValueReader::integer));
      case ParamType::FloatList: return wrap(list<double>(n, path, &ValueReader::real));
      case ParamType::StringList: return wrap(list<std::string>(n, path, &ValueReader::string));
    }
    return std::nullopt;
  }

 private:
  template <class T>
  static std::optional<ParamValue> wrap(std::optional<T> v) {
    if (!v) return std::nullopt;
    return ParamValue{std::move(*v)};
  }

  std::nullopt_t wrong(const toml::node& n, const std::string& path, const std::string& got) {
    diag_.error(n.source(), path, fmt::format("expected {}, got {}", spec_.allowed(), got));
    return std::nullopt;
  }

  const ParamSpec& spec_;
  Diagnostics& diag_;
};

// A plugin may declare `param_float("x", 1, ...)` with an integer literal default; keep
// values of one parameter one C++ type whatever their origin.
ParamValue normalized_default(const ParamSpec& spec) {
  const ParamValue& v = *spec.default_value;
  if (spec.type == ParamType::Float) {
    if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  }
  if (spec.type == ParamType::FloatList) {
    if (auto* i = std::get_if<std::vector<std::int64_t>>(&v)) return std::vector<double>(i->begin(), i->end());
  }
  return v;
}

}  // namespace

Params read_params(const Section& section, const Schema& schema, Diagnostics& diag) {
  Params params;
  for (const ParamSpec& spec : schema) {
    const std::string path = section.key_path(spec.name);
    if (const toml::node* n = section.node(spec.name)) {
      if (auto value = ValueReader(spec, diag).read(*n, path)) {
        params.set(spec.name, std::move(*value));
        continue;
      }
    } else if (spec.required() && section.table) {  // an absent section is reported once, by its reader
      diag.error(section.where, path, fmt::format("required key is missing (expected {})", spec.allowed()));
    }
    // Absent, or in error (already reported): the default keeps later checks meaningful.
    if (spec.default_value) params.set(spec.name, normalized_default(spec));
  }
  return params;
}

void check_unknown_keys(const Section& section, const std::vector<std::string>& allowed, Diagnostics& diag) {
  if (!section.table) return;
  const std::set<std::string> known(allowed.begin(), allowed.end());
  for (auto&& [key, node] : *section.table) {
    const std::string name(key.str());
    if (known.count(name)) continue;
    diag.error(key.source(), section.key_path(name),
               fmt::format("unknown key{} (allowed keys: {})", did_you_mean(name, allowed), join(allowed)));
  }
}

}  // namespace chestlab::config_detail

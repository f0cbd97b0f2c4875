// `--set section.key=value` overrides, applied to the parsed document before validation
// so that they are checked exactly like values written in the file.
//
// Each override is turned into a one-line TOML document `section.key = value` parsed with
// the override's text as its source path: every node it creates (including implicit
// tables such as a [scheduler] the file lacks) then reports errors as "--set ...".
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "config_internal.h"

namespace chestlab::config_detail {

namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

bool is_bare_key(const std::string& segment) {
  if (segment.empty()) return false;
  for (char c : segment) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

bool valid_key_path(const std::string& path) {
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    if (!is_bare_key(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start))) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

bool is_index(const std::string& key) {
  return !key.empty() && key.size() < 10 &&
         std::all_of(key.begin(), key.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// The value as TOML text: itself when it is one TOML value (3, [1, 2], "relu", true),
// else a quoted string, so that `--set dataset.images=/data/x` needs no shell quoting.
std::string value_text(const std::string& value) {
  try {
    toml::table probe = toml::parse(std::string_view("v = " + value), std::string_view("--set"));
    if (probe.size() == 1 && probe.contains("v")) return value;
  } catch (const toml::parse_error&) {
  }
  return to_toml(ParamValue{value});
}

class Merger {
 public:
  Merger(std::string origin, Diagnostics& diag) : origin_(std::move(origin)), diag_(diag) {}

  // Moves `patch` into `target`: tables the override only names on the way to its key
  // (non-inline) are descended into, anything else replaces what was there.
  void into_table(toml::table& target, toml::table& patch, const std::string& prefix) {
    for (auto&& [key, node] : patch) {
      const std::string name(key.str());
      const std::string path = prefix.empty() ? name : prefix + "." + name;
      toml::node* existing = target.get(name);
      toml::table* step = descends(node);
      if (step && existing && existing->is_table()) into_table(*existing->as_table(), *step, path);
      else if (step && existing && existing->is_array()) into_array(*existing->as_array(), *step, path);
      else target.insert_or_assign(key, std::move(node));  // the key keeps its --set origin
    }
  }

 private:
  static toml::table* descends(toml::node& node) {
    toml::table* t = node.as_table();
    return t && !t->is_inline() ? t : nullptr;
  }

  // `metrics.1.threshold=0.3`: the key after a list is an entry's index.
  void into_array(toml::array& target, toml::table& patch, const std::string& prefix) {
    for (auto&& [key, node] : patch) {
      const std::string name(key.str());
      const std::string path = prefix + "." + name;
      if (!is_index(name)) {
        diag_.error_at(origin_, path,
                       fmt::format("{} is a list; address one entry by its index, e.g. {}.0.{}", prefix, prefix, name));
        continue;
      }
      const std::size_t index = std::stoul(name);
      if (index >= target.size()) {
        diag_.error_at(origin_, path,
                       fmt::format("{} has {} entries (indices from 0); there is no entry {}", prefix, target.size(), index));
        continue;
      }
      toml::node& element = target[index];
      toml::table* step = descends(node);
      if (step && element.is_table()) into_table(*element.as_table(), *step, path);
      else target.replace(target.cbegin() + static_cast<std::ptrdiff_t>(index), std::move(node));
    }
  }

  std::string origin_;
  Diagnostics& diag_;
};

void apply_override(toml::table& root, const std::string& text, const std::string& origin, Diagnostics& diag) {
  const auto equals = text.find('=');
  const std::string path = trim(text.substr(0, equals));
  if (equals == std::string::npos || path.empty()) {
    diag.error_at(origin, "", "expected section.key=value, e.g. --set train.epochs=3");
    return;
  }
  if (!valid_key_path(path)) {
    diag.error_at(origin, "",
                  fmt::format("\"{}\" is not a key path: expected dot-separated keys of letters, digits, "
                              "'_' and '-' (e.g. model.channels, metrics.0.threshold)",
                              path));
    return;
  }
  toml::table patch;
  try {
    patch = toml::parse(std::string_view(path + " = " + value_text(trim(text.substr(equals + 1)))),
                        std::string_view(origin));
  } catch (const toml::parse_error& e) {
    diag.error_at(origin, path, fmt::format("cannot read the value: {}", e.description()));
    return;
  }
  Merger(origin, diag).into_table(root, patch, "");
}

}  // namespace

void apply_overrides(toml::table& root, const std::vector<std::string>& overrides, Diagnostics& diag) {
  for (const std::string& text : overrides) apply_override(root, text, override_origin(text), diag);
}

void apply_overrides(toml::table& root, const std::vector<LabeledOverride>& overrides, Diagnostics& diag) {
  for (const LabeledOverride& o : overrides) apply_override(root, o.text, o.origin, diag);
}

}  // namespace chestlab::config_detail

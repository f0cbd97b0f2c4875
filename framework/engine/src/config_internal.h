// Pieces shared by the experiment-file reader (config*.cpp). Not installed.
#pragma once

#include <toml++/toml.h>

#include <optional>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/params.h"

namespace chestlab::config_detail {

// Collects every error of one load so the user sees them all at once.
class Diagnostics {
 public:
  // Nodes whose source path is `file_name` are reported as file:line:column; nodes that
  // came from a `--set` carry that override's text as their source path and are reported
  // as "--set a.b=c" (a position inside a one-line override would only confuse).
  explicit Diagnostics(std::string file_name) : file_name_(std::move(file_name)) {}

  void error(const toml::source_region& where, const std::string& key_path, const std::string& what);
  // Errors not tied to a node (malformed `--set` text).
  void error_at(const std::string& origin, const std::string& key_path, const std::string& what);
  bool empty() const { return items_.empty(); }
  std::size_t count() const { return items_.size(); }
  // Throws ConfigError listing every error, file errors sorted by position, overrides last.
  [[noreturn]] void raise() const;

 private:
  struct Item {
    bool from_file;
    std::uint32_t line, column;
    std::string text;
  };
  std::string file_name_;
  std::vector<Item> items_;
};

// A table of the experiment file (or an absent one) with where to report problems.
struct Section {
  const toml::table* table = nullptr;  // nullptr: the section is absent
  toml::source_region where;           // header position, or the file's start if absent
  std::string path;                    // "model", "metrics.0", "dataset.augment.1"

  const toml::node* node(const std::string& key) const;
  // Position of `key`'s value if present, else of the section.
  const toml::source_region& where_of(const std::string& key) const;
  std::string key_path(const std::string& key) const { return path + "." + key; }
};

// "string \"abc\"", "float 2.5", "a table", ... for "got ..." in messages.
std::string describe(const toml::node& node);

// The closest candidate by edit distance when close enough to be a likely typo.
std::optional<std::string> closest_match(const std::string& word, const std::vector<std::string>& candidates);
// "; did you mean \"x\"?" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

// Reads the keys of `schema` from `section`: converts, checks type, range and choices,
// fills defaults. Errors go to `diag`; a key in error gets its default (or is left out).
Params read_params(const Section& section, const Schema& schema, Diagnostics& diag);

// Reports keys of `section` that are not in `allowed`, with a did-you-mean.
void check_unknown_keys(const Section& section, const std::vector<std::string>& allowed, Diagnostics& diag);

std::vector<std::string> names_of(const Schema& schema);

// Applies "a.b.c=value" overrides to the parsed document. Each override's nodes carry the
// override text as their source path, so later errors about them name the override.
void apply_overrides(toml::table& root, const std::vector<std::string>& overrides, Diagnostics& diag);

// Overrides whose errors name where they came from (a [sweep] entry) instead of "--set".
struct LabeledOverride {
  std::string text;    // "a.b=value"
  std::string origin;  // reported as the error's position
};
void apply_overrides(toml::table& root, const std::vector<LabeledOverride>& overrides, Diagnostics& diag);

// Validates a parsed document (overrides already applied) into a config; errors go to `diag`.
ExperimentConfig read_experiment_table(const toml::table& root, const SchemaCatalog& catalog, Diagnostics& diag);

// Parses TOML text; throws ConfigError "file:line:column: TOML syntax error: ..." when it does not parse.
toml::table parse_document(const std::string& text, const std::string& source_name);

// An experiment file's text; throws ConfigError when it is missing or unreadable.
std::string read_text_file(const std::string& path);

// A TOML value written back as TOML text (what a `--set` takes): 0.003, "relu", [1, 2].
std::string node_to_toml(const toml::node& node);

// The source path override nodes carry for `override_text`.
inline std::string override_origin(const std::string& override_text) { return "--set " + override_text; }

}  // namespace chestlab::config_detail

// Expanding the [sweep] table of an experiment file into validated points (see sweep.h and
// docs/sweeps.md). The table's structure is checked first, with file:line:column for every
// entry; then each point is the experiment with its settings applied as labelled overrides and
// read by the same reader as any experiment, so a bad path or value is reported once, naming
// the [sweep] entry it came from.
#include "chestlab/engine/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "chestlab/errors.h"
#include "chestlab/rng.h"
#include "config_internal.h"

namespace chestlab {

using namespace config_detail;

namespace {

// Sections whose values decide the fold assignment (seed, split) or where and under which name
// the sweep's files live: the same for every run of a sweep.
const std::vector<std::string> kFixedSections = {"experiment", "cv"};
const std::vector<std::string> kSweepKeys = {"grid", "variant", "random"};
const std::vector<std::string> kDistributions = {"log_uniform", "uniform", "int", "choice"};

std::string quoted_key(const std::string& path) { return to_toml(ParamValue{path}); }

}  // namespace

std::string config_detail::node_to_toml(const toml::node& node) {
  if (auto v = node.as_boolean()) return v->get() ? "true" : "false";
  if (auto v = node.as_integer()) return std::to_string(v->get());
  if (auto v = node.as_floating_point()) return to_toml(ParamValue{v->get()});
  if (auto v = node.as_string()) return to_toml(ParamValue{v->get()});
  if (auto a = node.as_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + node_to_toml((*a)[i]);
    return out + "]";
  }
  if (auto t = node.as_table()) {
    std::string out = "{";
    bool first = true;
    for (auto&& [k, v] : *t) {
      out += (first ? " " : ", ") + std::string(k.str()) + " = " + node_to_toml(v);
      first = false;
    }
    return out + (first ? "}" : " }");
  }
  // Dates and times: no parameter takes them; the reader will say so.
  std::ostringstream s;
  node.visit([&](auto&& v) { s << v; });
  return s.str();
}

namespace {

struct Leaf {
  std::string path;
  const toml::node* node;
  toml::source_region key_where;
};

// Walks a table down to its leaves; `is_leaf` decides where a path ends. Dotted keys
// (optimizer.lr = ...) and quoted ones ("optimizer.lr" = ...) give the same path.
template <class IsLeaf>
void flatten(const toml::table& table, const std::string& prefix, const std::vector<std::string>& reserved,
             IsLeaf is_leaf, std::vector<Leaf>& out) {
  for (auto&& [key, node] : table) {
    const std::string name(key.str());
    if (prefix.empty() && std::find(reserved.begin(), reserved.end(), name) != reserved.end()) continue;
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (node.is_table() && !is_leaf(node)) flatten(*node.as_table(), path, {}, is_leaf, out);
    else out.push_back(Leaf{path, &node, key.source()});
  }
}

class SweepReader {
 public:
  SweepReader(const toml::table& sweep, const std::string& source_name, Diagnostics& diag)
      : sweep_(sweep), source_name_(source_name), diag_(diag) {}

  struct Variant {
    std::string label;
    std::vector<SweepSetting> settings;
  };
  struct Axis {
    std::string path;
    std::vector<SweepSetting> values;
  };
  struct Random {
    std::string path;
    std::string kind;
    double lo = 0, hi = 0;
    std::vector<std::string> choices;
    std::string origin;
  };

  std::vector<Variant> variants;
  std::vector<Axis> axes;
  std::vector<Random> random;
  std::int64_t samples = 0;
  std::uint64_t random_seed = 0;
  bool has_random = false;
  std::vector<std::string> swept;

  void read() {
    for (auto&& [key, node] : sweep_) {
      const std::string name(key.str());
      if (std::find(kSweepKeys.begin(), kSweepKeys.end(), name) == kSweepKeys.end())
        diag_.error(key.source(), "sweep." + name,
                    fmt::format("unknown key{} (a [sweep] has: grid = {{ \"section.key\" = [values] }}, "
                                "[[sweep.variant]] tables, [sweep.random])",
                                did_you_mean(name, kSweepKeys)));
    }
    if (const toml::node* g = sweep_.get("grid")) read_grid(*g);
    if (const toml::node* v = sweep_.get("variant")) read_variants(*v);
    if (const toml::node* r = sweep_.get("random")) read_random(*r);
    if (sweep_.get("grid") && sweep_.get("random"))
      diag_.error(sweep_.get("random")->source(), "sweep.random",
                  "a sweep has either a grid or a random search, not both (variants combine with either)");
    check_overlaps();
  }

 private:
  std::string origin(const toml::source_region& where, const std::string& what) const {
    return fmt::format("{}:{}:{} ({})", source_name_, where.begin.line, where.begin.column, what);
  }

  // A parameter path the sweep may set; reports it otherwise.
  bool check_path(const Leaf& leaf, const std::string& key_path) {
    const auto dot = leaf.path.find('.');
    if (dot == std::string::npos) {
      diag_.error(leaf.key_where, key_path,
                  fmt::format("expected a parameter path section.key (e.g. \"optimizer.lr\", \"model.depth\"), "
                              "got \"{}\"",
                              leaf.path));
      return false;
    }
    const std::string section = leaf.path.substr(0, dot);
    if (std::find(kFixedSections.begin(), kFixedSections.end(), section) != kFixedSections.end()) {
      // The training seed has a key of its own so that it can be swept with the folds fixed.
      const bool a_seed = leaf.path == "experiment.seed" || leaf.path == "cv.seed";
      diag_.error(leaf.key_where, key_path,
                  fmt::format("[{}] cannot be swept: every run of a sweep shares the experiment's name, seed and "
                              "folds, so that fold k holds the same patients in every run ({})",
                              section,
                              a_seed ? "to vary the training's randomness with the folds fixed, sweep \"train.seed\""
                                     : "sweep a copy of the file instead"));
      return false;
    }
    if (is_output_only_key(leaf.path)) {
      diag_.error(leaf.key_where, key_path,
                  fmt::format("{} cannot be swept: it changes what is written beside a run, not what the run "
                              "computes, and is not part of run ids; set it for the whole sweep in the file or "
                              "with `chestlab sweep --tensorboard`",
                              leaf.path));
      return false;
    }
    if (section == "sweep") {
      diag_.error(leaf.key_where, key_path, "a sweep cannot set [sweep] itself");
      return false;
    }
    note_swept(leaf.path);
    return true;
  }

  void note_swept(const std::string& path) {
    if (std::find(swept.begin(), swept.end(), path) == swept.end()) swept.push_back(path);
  }

  void read_grid(const toml::node& node) {
    const toml::table* table = node.as_table();
    if (!table) {
      diag_.error(node.source(), "sweep.grid",
                  fmt::format("expected a table of parameter paths and lists of values, e.g. grid = "
                              "{{ \"optimizer.lr\" = [1e-3, 3e-3] }}, got {}",
                              describe(node)));
      return;
    }
    std::vector<Leaf> leaves;
    flatten(*table, "", {}, [](const toml::node&) { return false; }, leaves);
    if (leaves.empty()) diag_.error(node.source(), "sweep.grid", "expected at least one parameter to vary");
    for (const Leaf& leaf : leaves) {
      const std::string key_path = "sweep.grid." + quoted_key(leaf.path);
      if (!check_path(leaf, key_path)) continue;
      const toml::array* values = leaf.node->as_array();
      if (!values || values->empty()) {
        diag_.error(leaf.node->source(), key_path,
                    fmt::format("expected a non-empty list of the values to try, e.g. [1e-3, 3e-3], got {}",
                                describe(*leaf.node)));
        continue;
      }
      Axis axis{leaf.path, {}};
      std::set<std::string> seen;
      for (std::size_t i = 0; i < values->size(); ++i) {
        const toml::node& v = (*values)[i];
        const std::string text = node_to_toml(v);
        if (!seen.insert(text).second) {
          diag_.error(v.source(), key_path, fmt::format("value {} is listed twice", text));
          continue;
        }
        axis.values.push_back({leaf.path, text, origin(v.source(), "sweep.grid " + quoted_key(leaf.path))});
      }
      axes.push_back(std::move(axis));
    }
  }

  void read_variants(const toml::node& node) {
    const toml::array* array = node.as_array();
    if (!array || !array->is_array_of_tables()) {
      diag_.error(node.source(), "sweep.variant",
                  fmt::format("expected [[sweep.variant]] tables (double brackets, one per variant), got {}",
                              describe(node)));
      return;
    }
    std::map<std::string, std::string> names;  // name -> key path of its first use
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::table& t = *(*array)[i].as_table();
      const std::string base = fmt::format("sweep.variant.{}", i);
      Variant variant;
      if (const toml::node* n = t.get("name")) {
        if (!n->is_string() || n->as_string()->get().empty()) {
          diag_.error(n->source(), base + ".name", fmt::format("expected a non-empty string, got {}", describe(*n)));
        } else {
          variant.label = n->as_string()->get();
          auto [it, inserted] = names.emplace(variant.label, base);
          if (!inserted)
            diag_.error(n->source(), base + ".name",
                        fmt::format("variant name \"{}\" is used by {} too", variant.label, it->second));
        }
      } else {
        variant.label = fmt::format("variant{}", i);
      }
      std::vector<Leaf> leaves;
      flatten(t, "", {"name"}, [](const toml::node&) { return false; }, leaves);
      for (const Leaf& leaf : leaves) {
        const std::string key_path = base + "." + quoted_key(leaf.path);
        if (!check_path(leaf, key_path)) continue;
        variant.settings.push_back({leaf.path, node_to_toml(*leaf.node),
                                    origin(leaf.node->source(), fmt::format("{} {}", base, quoted_key(leaf.path)))});
      }
      variants.push_back(std::move(variant));
    }
  }

  std::optional<double> number(const toml::node& n) {
    if (auto i = n.as_integer()) return static_cast<double>(i->get());
    if (auto f = n.as_floating_point()) return f->get();
    return std::nullopt;
  }

  void read_random(const toml::node& node) {
    const toml::table* table = node.as_table();
    if (!table) {
      diag_.error(node.source(), "sweep.random", fmt::format("expected a table [sweep.random], got {}", describe(node)));
      return;
    }
    has_random = true;
    const toml::node* n = table->get("samples");
    if (!n || !n->is_integer() || n->as_integer()->get() < 1)
      diag_.error(n ? n->source() : node.source(), "sweep.random.samples",
                  n ? fmt::format("expected an integer >= 1 (how many points to draw), got {}", describe(*n))
                    : "required key is missing: how many points to draw, e.g. samples = 8");
    else
      samples = n->as_integer()->get();
    if (const toml::node* s = table->get("seed")) {
      if (!s->is_integer() || s->as_integer()->get() < 0)
        diag_.error(s->source(), "sweep.random.seed", fmt::format("expected an integer >= 0, got {}", describe(*s)));
      else
        random_seed = static_cast<std::uint64_t>(s->as_integer()->get());
    }
    auto is_distribution = [](const toml::node& x) {
      const toml::table* t = x.as_table();
      if (!t) return false;
      if (t->is_inline()) return true;  // { log_uniform = [...] }: a distribution, known or not
      for (auto&& [k, v] : *t)
        if (std::find(kDistributions.begin(), kDistributions.end(), std::string(k.str())) != kDistributions.end())
          return true;
      return false;
    };
    std::vector<Leaf> leaves;
    flatten(*table, "", {"samples", "seed"}, is_distribution, leaves);
    if (leaves.empty()) diag_.error(node.source(), "sweep.random", "expected at least one parameter to draw");
    for (const Leaf& leaf : leaves) {
      const std::string key_path = "sweep.random." + quoted_key(leaf.path);
      if (!check_path(leaf, key_path)) continue;
      read_distribution(leaf, key_path);
    }
  }

  void read_distribution(const Leaf& leaf, const std::string& key_path) {
    const char* expected =
        "expected one of { log_uniform = [low, high] }, { uniform = [low, high] }, { int = [low, high] } "
        "(both ends included) or { choice = [values...] }";
    const toml::table* t = leaf.node->as_table();
    if (!t || t->size() != 1) {
      diag_.error(leaf.node->source(), key_path, fmt::format("{}, got {}", expected, describe(*leaf.node)));
      return;
    }
    const std::string kind(t->begin()->first.str());
    const toml::node& arg = t->begin()->second;
    Random r;
    r.path = leaf.path;
    r.kind = kind;
    r.origin = origin(arg.source(), "sweep.random " + quoted_key(leaf.path));
    const toml::array* a = arg.as_array();
    if (kind == "choice") {
      if (!a || a->empty()) {
        diag_.error(arg.source(), key_path + ".choice",
                    fmt::format("expected a non-empty list of values, got {}", describe(arg)));
        return;
      }
      for (const toml::node& v : *a) r.choices.push_back(node_to_toml(v));
      random.push_back(std::move(r));
      return;
    }
    if (std::find(kDistributions.begin(), kDistributions.end(), kind) == kDistributions.end()) {
      diag_.error(t->begin()->first.source(), key_path + "." + kind,
                  fmt::format("unknown distribution{}; {}", did_you_mean(kind, kDistributions), expected));
      return;
    }
    std::optional<double> lo = a && a->size() == 2 ? number((*a)[0]) : std::nullopt;
    std::optional<double> hi = a && a->size() == 2 ? number((*a)[1]) : std::nullopt;
    const bool integers = a && a->size() == 2 && (*a)[0].is_integer() && (*a)[1].is_integer();
    std::string problem;
    if (!lo || !hi) problem = "expected [low, high], two numbers";
    else if (kind == "int" && !integers) problem = "expected [low, high], two integers";
    else if (!(*lo < *hi)) problem = "expected low < high";
    else if (kind == "log_uniform" && *lo <= 0) problem = "expected low > 0 (a log-uniform range is positive)";
    if (!problem.empty()) {
      diag_.error(arg.source(), key_path + "." + kind, fmt::format("{}, got {}", problem, describe(arg)));
      return;
    }
    r.lo = *lo;
    r.hi = *hi;
    random.push_back(std::move(r));
  }

  // A path set by both a variant and the grid (or random search) would be ambiguous.
  void check_overlaps() {
    std::set<std::string> drawn;
    for (const Axis& a : axes) drawn.insert(a.path);
    for (const Random& r : random) drawn.insert(r.path);
    for (std::size_t i = 0; i < variants.size(); ++i)
      for (const SweepSetting& s : variants[i].settings)
        if (drawn.count(s.path))
          diag_.error_at(s.origin, fmt::format("sweep.variant.{}", i),
                         fmt::format("\"{}\" is also varied by the {}; set it in one place only", s.path,
                                     has_random ? "random search" : "grid"));
  }

  const toml::table& sweep_;
  std::string source_name_;
  Diagnostics& diag_;
};

// Random draws in a fixed order (sample by sample, parameters sorted by path) from chestlab's
// portable generator: the same seed gives the same points everywhere.
std::string draw(const SweepReader::Random& r, Rng& rng) {
  if (r.kind == "choice") return r.choices[rng.below(r.choices.size())];
  if (r.kind == "int") {
    const auto lo = static_cast<std::int64_t>(r.lo), hi = static_cast<std::int64_t>(r.hi);
    return std::to_string(lo + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(hi - lo + 1))));
  }
  if (r.kind == "log_uniform") return to_toml(ParamValue{std::exp(rng.uniform(std::log(r.lo), std::log(r.hi)))});
  return to_toml(ParamValue{rng.uniform(r.lo, r.hi)});
}

std::vector<std::vector<SweepSetting>> grid_product(const std::vector<SweepReader::Axis>& axes) {
  std::vector<std::vector<SweepSetting>> out{{}};
  for (const auto& axis : axes) {
    std::vector<std::vector<SweepSetting>> next;
    for (const auto& partial : out)
      for (const SweepSetting& v : axis.values) {
        next.push_back(partial);
        next.back().push_back(v);
      }
    out = std::move(next);
  }
  return out;
}
}  // namespace

std::vector<std::string> SweepPoint::overrides() const {
  std::vector<std::string> out;
  for (const SweepSetting& s : settings) out.push_back(s.override_text());
  return out;
}

std::string SweepPoint::value_of(const std::string& path) const {
  for (const SweepSetting& s : settings)
    if (s.path == path) return s.value;
  return "";
}

std::string sweep_run_id(const ExperimentConfig& config) {
  ExperimentConfig located = config;
  located.output.clear();
  return located.hash();
}

std::vector<int> folds_of(const ExperimentConfig& config) {
  std::vector<int> folds;
  if (config.cv.mode == "holdout") return {0};
  if (!config.cv.run_folds.empty()) {
    for (auto k : config.cv.run_folds) folds.push_back(static_cast<int>(k));
    return folds;
  }
  for (int k = 0; k < config.cv.fold_models(); ++k) folds.push_back(k);
  return folds;
}

SweepPlan expand_sweep_text(const std::string& toml_text, const std::string& source_name, const std::string& base_dir,
                            const std::vector<std::string>& overrides, const SchemaCatalog& catalog) {
  const toml::table root = parse_document(toml_text, source_name);
  SweepPlan plan;
  Diagnostics diag(source_name);
  std::optional<SweepReader> sweep;
  if (const toml::node* node = root.get("sweep")) {
    plan.has_sweep = true;
    if (!node->is_table()) {
      diag.error(node->source(), "sweep", fmt::format("expected a table [sweep], got {}", describe(*node)));
      diag.raise();
    }
    sweep.emplace(*node->as_table(), source_name, diag);
    sweep->read();
    if (!diag.empty()) diag.raise();
    plan.swept = sweep->swept;
  }

  // Variants (or one empty) crossed with the grid points or random samples (or one empty).
  std::vector<SweepReader::Variant> variants{{"", {}}};
  std::vector<std::vector<SweepSetting>> draws{{}};
  if (sweep) {
    if (!sweep->variants.empty()) variants = sweep->variants;
    if (!sweep->axes.empty()) draws = grid_product(sweep->axes);
    if (sweep->has_random) {
      draws.clear();
      std::vector<SweepReader::Random> params = sweep->random;
      std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
      Rng rng(mix_seed({sweep->random_seed, 0x73776565ull}));
      for (std::int64_t s = 0; s < sweep->samples; ++s) {
        std::vector<SweepSetting> point;
        for (const auto& p : params) point.push_back({p.path, draw(p, rng), p.origin});
        draws.push_back(std::move(point));
      }
    }
  }

  std::vector<std::string> errors;
  std::set<std::string> seen_errors;
  std::map<std::string, std::string> label_of_id;
  for (const auto& variant : variants) {
    for (const auto& drawn : draws) {
      SweepPoint point;
      point.label = variant.label;
      point.settings = variant.settings;
      point.settings.insert(point.settings.end(), drawn.begin(), drawn.end());

      toml::table doc = parse_document(toml_text, source_name);
      doc.erase("sweep");
      Diagnostics point_diag(source_name);
      apply_overrides(doc, overrides, point_diag);
      std::vector<LabeledOverride> labelled;
      for (const SweepSetting& s : point.settings) labelled.push_back({s.override_text(), s.origin});
      apply_overrides(doc, labelled, point_diag);
      ExperimentConfig cfg = read_experiment_table(doc, catalog, point_diag);
      if (!point_diag.empty()) {
        try {
          point_diag.raise();
        } catch (const ConfigError& e) {
          std::istringstream lines(e.what());
          for (std::string line; std::getline(lines, line);)
            if (seen_errors.insert(line).second) errors.push_back(line);
        }
        continue;
      }
      cfg.source_file = source_name;
      cfg.base_dir = base_dir;
      point.config = std::move(cfg);
      point.run_id = sweep_run_id(point.config);
      std::string description;
      for (const SweepSetting& s : point.settings) description += (description.empty() ? "" : " ") + s.override_text();
      if (!point.label.empty()) description = point.label + (description.empty() ? "" : ": " + description);
      auto [it, inserted] = label_of_id.emplace(point.run_id, description);
      if (!inserted) {
        if (sweep && sweep->has_random) {
          ++plan.duplicates_skipped;  // a random draw equal to an earlier one
          continue;
        }
        const std::string line =
            fmt::format("{}: sweep: \"{}\" and \"{}\" resolve to the same configuration (run {}); every point of a "
                        "sweep must differ",
                        source_name, it->second, description, point.run_id);
        if (seen_errors.insert(line).second) errors.push_back(line);
        continue;
      }
      plan.points.push_back(std::move(point));
    }
  }
  if (!errors.empty()) {
    std::string message;
    for (const std::string& line : errors) message += (message.empty() ? "" : "\n") + line;
    throw ConfigError(message);
  }
  return plan;
}

SweepPlan expand_sweep(const std::string& path, const std::vector<std::string>& overrides,
                       const SchemaCatalog& catalog) {
  const std::string base_dir = std::filesystem::absolute(path).parent_path().lexically_normal().string();
  return expand_sweep_text(read_text_file(path), path, base_dir, overrides, catalog);
}

}  // namespace chestlab

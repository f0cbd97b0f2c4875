// Reading an experiment file: parse, apply overrides, validate every section against its
// schema, then the checks that span sections (monitor, metric names, model/loss/metric
// pairing). Every problem is collected; one ConfigError reports them all.
#include "chestlab/engine/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "chestlab/errors.h"
#include "config_internal.h"

namespace chestlab {

using namespace config_detail;

namespace {

// Bounds folds x repeats, so that a typo (folds = 5000000) is an error and not an overflow.
constexpr std::int64_t kMaxFoldModels = 10000;

// Plain loops, not std::regex: libstdc++'s regex matcher recurses once per character, so a
// long value (a 66 kB experiment name, found by tests/fuzz) overflowed the stack.
bool is_folder_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// auto | cpu | cuda | cuda:N
bool is_device_name(const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda") return true;
  const std::string prefix = "cuda:";
  return device.size() > prefix.size() && device.compare(0, prefix.size(), prefix) == 0 &&
         std::all_of(device.begin() + static_cast<std::ptrdiff_t>(prefix.size()), device.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// [sweep] is read by expand_sweep (sweep.cpp); a single run ignores it.
const std::vector<std::string> kSectionNames = {"experiment", "dataset", "model", "loss", "optimizer",
                                                "scheduler",  "metrics", "train", "cv",   "sweep"};

std::string plural(Kind kind) { return kind == Kind::Loss ? "losses" : std::string(to_string(kind)) + "s"; }

Schema without_key(const Schema& schema, const std::string& name) {
  Schema out;
  for (const ParamSpec& spec : schema)
    if (spec.name != name) out.push_back(spec);
  return out;
}

const ParamSpec& spec_of(const Schema& schema, const std::string& name) {
  for (const ParamSpec& spec : schema)
    if (spec.name == name) return spec;
  throw std::logic_error("host schema lacks " + name);
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A plugin-backed section as read: host keys, the named component and its parameters.
struct PluginSection {
  Section section;
  std::string plugin;
  const ComponentInfo* info = nullptr;  // nullptr when the name was missing or unknown
  Params host;
  Params params;
};

class ExperimentReader {
 public:
  ExperimentReader(const toml::table& root, const SchemaCatalog& catalog, Diagnostics& diag)
      : root_(root), catalog_(catalog), diag_(diag) {}

  ExperimentConfig read() {
    ExperimentConfig cfg;
    check_unknown_sections();
    read_experiment(cfg);
    read_dataset(cfg);
    PluginSection model = read_model(cfg);
    PluginSection loss = read_model_or_loss("loss", Kind::Loss, cfg.loss);
    read_optimizer(cfg.optimizer);
    read_scheduler(cfg);
    read_metrics(cfg);
    read_train(cfg.train);
    read_cv(cfg.cv);
    check_output_pairing(model, loss);
    check_across_sections();
    return cfg;
  }

 private:
  // ---- sections ----

  void check_unknown_sections() {
    for (auto&& [key, node] : root_) {
      const std::string name(key.str());
      if (std::find(kSectionNames.begin(), kSectionNames.end(), name) != kSectionNames.end()) continue;
      diag_.error(key.source(), name,
                  fmt::format("unknown section{} (sections: {})", did_you_mean(name, kSectionNames),
                              join(kSectionNames)));
    }
  }

  Section section(const std::string& name, bool required) {
    Section s{nullptr, root_.source(), name};
    const toml::node* node = root_.get(name);
    if (!node) {
      if (required) diag_.error(root_.source(), "", fmt::format("missing required section [{}]", name));
    } else if (!node->is_table()) {
      diag_.error(node->source(), name, fmt::format("expected a table [{}], got {}", name, describe(*node)));
      s.where = node->source();
    } else {
      s.table = node->as_table();
      s.where = node->source();
    }
    return s;
  }

  // The tables of an array of tables such as [[metrics]]; reports anything else.
  std::vector<Section> table_array(const toml::node* node, const std::string& path) {
    std::vector<Section> out;
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array) {
      diag_.error(node->source(), path,
                  fmt::format("expected an array of tables [[{}]] (double brackets, one per entry), got {}", path,
                              describe(*node)));
      return out;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      const std::string element_path = fmt::format("{}.{}", path, i);
      if (const toml::table* t = element.as_table()) {
        out.push_back(Section{t, t->source(), element_path});
      } else {
        diag_.error(element.source(), element_path, fmt::format("expected a table, got {}", describe(element)));
      }
    }
    return out;
  }

  // ---- plugin names ----

  // Reads the key naming a component (`plugin`, or `type` for augmentations) and checks
  // that such a component exists. Returns "" when missing or unknown (already reported).
  std::string component_name(const Section& s, const ParamSpec& spec, const std::string& what,
                             const std::string& what_plural, const std::vector<std::string>& available,
                             bool known_if_found) {
    const std::string path = s.key_path(spec.name);
    const toml::node* node = s.node(spec.name);
    if (!node) {
      if (spec.default_value) {
        const std::string name = std::get<std::string>(*spec.default_value);
        if (!known_if_found)
          diag_.error(s.where, path,
                      fmt::format("the default {} \"{}\" is not installed (available: {})", what, name,
                                  join(available)));
        return known_if_found ? name : "";
      }
      // An absent or malformed section is reported once, not once per missing key.
      if (s.table)
        diag_.error(s.where, path,
                    fmt::format("required key is missing; name one of the available {}: {}", what_plural,
                                join(available)));
      return "";
    }
    if (!node->is_string()) {
      diag_.error(node->source(), path,
                  fmt::format("expected string (a {} name), got {} (available: {})", what, describe(*node),
                              join(available)));
      return "";
    }
    const std::string name = node->as_string()->get();
    if (!known_if_found) {
      diag_.error(node->source(), path,
                  fmt::format("unknown {} \"{}\"{} (available: {})", what, name, did_you_mean(name, available),
                              join(available)));
      return "";
    }
    return name;
  }

  std::string plugin_name(const Section& s, Kind kind, const Schema& host_schema) {
    const ParamSpec& spec = spec_of(host_schema, "plugin");
    std::string requested;
    if (const toml::node* n = s.node("plugin"); n && n->is_string()) requested = n->as_string()->get();
    else if (!n && spec.default_value) requested = std::get<std::string>(*spec.default_value);
    const bool known = !requested.empty() && catalog_.find(kind, requested);
    return component_name(s, spec, to_string(kind), plural(kind), catalog_.names(kind), known);
  }

  // Host keys, then the named plugin's parameters; unknown keys are only judged when the
  // plugin is known (otherwise we cannot tell which keys it would take).
  PluginSection read_plugin_section(const Section& s, Kind kind, const Schema& host_schema,
                                    const std::vector<std::string>& more_host_keys = {}) {
    PluginSection out;
    out.section = s;
    const std::size_t errors_at_start = diag_.count();
    out.host = read_params(s, without_key(host_schema, "plugin"), diag_);
    out.plugin = plugin_name(s, kind, host_schema);
    if (out.plugin.empty()) return out;
    out.info = catalog_.find(kind, out.plugin);
    const std::size_t errors_before = diag_.count();
    out.params = read_params(s, out.info->params, diag_);
    // A rule across parameters reads every value; one already in error would only mislead it.
    if (diag_.count() == errors_before) check_across_params(s, *out.info, out.params);
    check_unknown_keys(s, concat(concat(names_of(host_schema), more_host_keys), names_of(out.info->params)), diag_);
    const bool clean = diag_.count() == errors_at_start;
    remember(s, out.host, clean);
    remember(s, out.params, clean);
    return out;
  }

  // The component's own rules (ComponentInfo::checks), each reported at the first of its
  // keys the file sets, like any other error of that key.
  // A rule naming a key of another section ("dataset.image_size") waits until every
  // section is read (check_across_sections).
  void check_across_params(const Section& s, const ComponentInfo& info, const Params& params) {
    for (const ParamCheck& rule : info.checks) {
      if (reads_other_sections(rule)) {
        deferred_.push_back({s, &rule, params});
        continue;
      }
      const std::string why = rule.check(params);
      if (why.empty()) continue;
      std::string key = rule.keys.empty() ? std::string("plugin") : rule.keys.front();
      for (const std::string& k : rule.keys)
        if (s.node(k)) {
          key = k;
          break;
        }
      diag_.error(s.where_of(key), s.key_path(key), why);
    }
  }

  static bool reads_other_sections(const ParamCheck& rule) {
    for (const std::string& k : rule.keys)
      if (k.find('.') != std::string::npos) return true;
    return false;
  }

  // The values of a singular section ([dataset], [model], [cv], ...), defaults filled in,
  // as rules across sections name them: "dataset.image_size". A section with an error is
  // not remembered: its values may be stand-in defaults, and a rule reading them would only
  // add a misleading second error.
  void remember(const Section& s, const Params& values, bool clean) {
    if (!clean || s.path.find('.') != std::string::npos) return;  // [[metrics]] entries are not addressable
    sections_.emplace(s.path, s);
    for (const auto& [key, value] : values.values()) resolved_[s.path + "." + key] = value;
  }

  // Rules such as "image_size is a multiple of 2^depth" (a model's rule reading the
  // dataset's size). The rule sees its own section's values under their plain names and the
  // others' under "section.key"; it is skipped when a key it names is absent (another
  // dataset has no image_size) or in error (already reported). The error is reported at the
  // first of its keys the file sets, in whichever section that key lives.
  void check_across_sections() {
    for (const DeferredRule& d : deferred_) {
      Params values = d.own;
      bool complete = true;
      for (const std::string& k : d.rule->keys) {
        if (k.find('.') == std::string::npos) continue;
        auto it = resolved_.find(k);
        if (it == resolved_.end()) {
          complete = false;
          break;
        }
        values.set(k, it->second);
      }
      if (!complete) continue;
      const std::string why = d.rule->check(values);
      if (why.empty()) continue;
      const Section* where = &d.section;
      std::string key = d.rule->keys.front();
      for (const std::string& k : d.rule->keys) {
        const auto dot = k.find('.');
        const Section* owner = &d.section;
        std::string plain = k;
        if (dot != std::string::npos) {
          auto s = sections_.find(k.substr(0, dot));
          if (s == sections_.end()) continue;
          owner = &s->second;
          plain = k.substr(dot + 1);
        }
        if (owner->node(plain)) {
          where = owner, key = plain;
          break;
        }
      }
      if (key.find('.') != std::string::npos) {  // set nowhere: report at the rule's own section
        where = &d.section;
        key = "plugin";
      }
      diag_.error(where->where_of(key), where->key_path(key), why);
    }
  }

  // ---- [experiment] ----

  void read_experiment(ExperimentConfig& cfg) {
    const Section s = section("experiment", true);
    const Params p = read_params(s, experiment_section_schema(), diag_);
    check_unknown_keys(s, names_of(experiment_section_schema()), diag_);
    if (p.has("name")) {
      cfg.name = p.str("name");
      if (!is_folder_name(cfg.name))
        diag_.error(s.where_of("name"), "experiment.name",
                    fmt::format("expected a non-empty name of letters, digits, '_', '.' and '-' (it names the "
                                "results folder), got \"{}\"",
                                cfg.name));
    }
    cfg.seed = static_cast<std::uint64_t>(p.integer("seed"));
    cfg.output = p.str("output");
  }

  // ---- [dataset] and [[dataset.augment]] ----

  void read_dataset(ExperimentConfig& cfg) {
    const Section s = section("dataset", true);
    PluginSection ds = read_plugin_section(s, Kind::Dataset, dataset_host_schema(), {"augment"});
    cfg.dataset = {ds.plugin, ds.params};
    cfg.on_error = ds.host.str("on_error");
    if (!s.table) return;
    for (const Section& a : table_array(s.node("augment"), "dataset.augment")) cfg.augment.push_back(read_augment(a));
  }

  AugmentConfig read_augment(const Section& s) {
    const ParamSpec& spec = spec_of(augment_host_schema(), "type");
    const toml::node* n = s.node("type");
    const bool known = n && n->is_string() && catalog_.augmentation(n->as_string()->get());
    AugmentConfig out;
    out.type = component_name(s, spec, "augmentation", "augmentations", catalog_.augmentation_types(), known);
    if (out.type.empty()) return out;
    const Schema& schema = *catalog_.augmentation(out.type);
    out.params = read_params(s, schema, diag_);
    check_unknown_keys(s, concat(names_of(augment_host_schema()), names_of(schema)), diag_);
    return out;
  }

  // ---- [model], [loss], [scheduler] ----

  PluginSection read_model_or_loss(const std::string& name, Kind kind, ComponentConfig& out) {
    PluginSection ps = read_plugin_section(section(name, true), kind, component_host_schema());
    out = {ps.plugin, ps.params};
    return ps;
  }

  PluginSection read_model(ExperimentConfig& cfg) {
    PluginSection ps = read_plugin_section(section("model", true), Kind::Model, model_host_schema());
    cfg.model = {ps.plugin, ps.params};
    if (ps.host.has("init")) {  // absent when the section itself failed to read
      cfg.model_init = ps.host.str("init");
      cfg.model_init_rename = ps.host.strings("init_rename");
      cfg.model_init_partial = ps.host.boolean("init_partial");
    }
    for (const std::string& r : cfg.model_init_rename)
      if (r.find('=') == std::string::npos || r.front() == '=')
        diag_.error(ps.section.where_of("init_rename"), "model.init_rename",
                    fmt::format("\"{}\" is not \"from=to\" (a non-empty file-name prefix, '=', the model's prefix, "
                                "which may be empty)",
                                r));
    return ps;
  }

  void read_scheduler(ExperimentConfig& cfg) {
    PluginSection ps = read_plugin_section(section("scheduler", false), Kind::Scheduler, scheduler_host_schema());
    cfg.scheduler = {ps.plugin, ps.params};
    cfg.warmup_epochs = ps.host.integer("warmup_epochs");
  }

  // ---- [optimizer] ----

  void read_optimizer(OptimizerConfig& out) {
    const Section s = section("optimizer", false);
    const std::size_t errors_at_start = diag_.count();
    const Params p = read_params(s, optimizer_schema(), diag_);
    check_unknown_keys(s, names_of(optimizer_schema()), diag_);
    remember(s, p, diag_.count() == errors_at_start);
    out.name = p.str("name");
    out.lr = p.real("lr");
    out.weight_decay = p.real("weight_decay");
    out.betas = p.reals("betas");
    out.momentum = p.real("momentum");
    out.nesterov = p.boolean("nesterov");
    // What a ParamSpec cannot express: betas exactly two, each < 1.
    if (out.betas.size() != 2 || out.betas[0] >= 1 || out.betas[1] >= 1)
      diag_.error(s.where_of("betas"), "optimizer.betas",
                  fmt::format("expected a list of 2 floats, each in [0, 1), got {}", to_toml(ParamValue{out.betas})));
  }

  // ---- [[metrics]] ----

  void read_metrics(ExperimentConfig& cfg) {
    const toml::node* node = root_.get("metrics");
    if (!node) {
      diag_.error(root_.source(), "", "missing required section [[metrics]] (at least one metric)");
      return;
    }
    if (node->is_array() && node->as_array()->empty())
      diag_.error(node->source(), "metrics", "expected at least one metric");
    std::vector<std::size_t> monitors;
    for (const Section& s : table_array(node, "metrics")) {
      PluginSection ps = read_plugin_section(s, Kind::Metric, metric_host_schema());
      MetricConfig m;
      m.plugin = ps.plugin;
      m.name = ps.host.str("name").empty() ? ps.plugin : ps.host.str("name");
      m.monitor = ps.host.boolean("monitor");
      // Unless the entry says otherwise, the metric's own declared direction decides.
      const bool mode_given = s.node("mode") != nullptr;
      m.maximize = mode_given || !ps.info ? ps.host.str("mode") == "max" : ps.info->higher_is_better;
      m.params = ps.params;
      if (m.monitor) monitors.push_back(cfg.metrics.size());
      cfg.metrics.push_back(std::move(m));
      metrics_.push_back(std::move(ps));
    }
    check_metric_names(cfg.metrics);
    for (std::size_t i = 1; i < monitors.size(); ++i) {
      const Section& s = metrics_[monitors[i]].section;
      diag_.error(s.where_of("monitor"), s.key_path("monitor"),
                  fmt::format("only one metric may be the monitor, and {} (\"{}\") already is",
                              metrics_[monitors[0]].section.path, cfg.metrics[monitors[0]].name));
    }
    // No monitor named: the first metric is; recording it keeps the resolved file explicit.
    if (monitors.empty() && !cfg.metrics.empty()) cfg.metrics.front().monitor = true;
  }

  void check_metric_names(const std::vector<MetricConfig>& metrics) {
    std::map<std::string, std::size_t> first_with_name;
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      const std::string& name = metrics[i].name;
      if (name.empty()) continue;  // unknown plugin, already reported
      auto [it, inserted] = first_with_name.emplace(name, i);
      if (inserted) continue;
      const Section& s = metrics_[i].section;
      diag_.error(s.where_of("name"), s.key_path("name"),
                  fmt::format("duplicate metric name \"{}\" ({} has it too); metric names are result columns and "
                              "must be unique: give one of them name = \"...\"",
                              name, metrics_[it->second].section.path));
    }
  }

  // ---- [train], [cv] ----

  void read_train(TrainConfig& out) {
    const Section s = section("train", false);
    const std::size_t errors_at_start = diag_.count();
    const Params p = read_params(s, train_schema(), diag_);
    check_unknown_keys(s, names_of(train_schema()), diag_);
    remember(s, p, diag_.count() == errors_at_start);
    out.epochs = p.integer("epochs");
    out.batch_size = p.integer("batch_size");
    out.device = p.str("device");
    out.workers = p.integer("workers");
    out.prefetch = p.integer("prefetch");
    out.threads = p.integer("threads");
    out.grad_clip = p.real("grad_clip");
    out.early_stopping = p.integer("early_stopping");
    out.deterministic = p.boolean("deterministic");
    // Absent: the experiment seed, whatever it is (resolved by training_seed()).
    if (s.node("seed") && p.has("seed")) out.seed = static_cast<std::uint64_t>(p.integer("seed"));
    out.tensorboard = p.boolean("tensorboard");
    out.tensorboard_every = p.integer("tensorboard_every");
    if (!is_device_name(out.device))
      diag_.error(s.where_of("device"), "train.device",
                  fmt::format("expected one of: auto, cpu, cuda, cuda:N (N a GPU index), got \"{}\"", out.device));
    out.precision = p.str("precision");
  }

  void read_cv(CvConfig& out) {
    const Section s = section("cv", false);
    const std::size_t errors_at_start = diag_.count();
    const Params p = read_params(s, cv_schema(), diag_);
    check_unknown_keys(s, names_of(cv_schema()), diag_);
    remember(s, p, diag_.count() == errors_at_start);
    out.mode = p.str("mode");
    out.folds = p.integer("folds");
    out.repeats = p.integer("repeats");
    out.stratify = p.boolean("stratify");
    // Absent: the experiment seed, whatever it is (resolved by fold_seed()).
    if (s.node("seed") && p.has("seed")) out.seed = static_cast<std::uint64_t>(p.integer("seed"));
    out.splits = p.str("splits");
    out.run_folds = p.integers("run_folds");
    out.holdout = p.reals("holdout");
    out.holdout_order = p.str("holdout_order");
    check_repeats(s, out);
    check_run_folds(s, out);
    check_holdout(s, out);
  }

  void check_repeats(const Section& s, CvConfig& cv) {
    if (cv.repeats == 1) return;
    if (cv.mode == "holdout") {
      diag_.error(s.where_of("repeats"), "cv.repeats",
                  fmt::format("repeats = {} needs mode = \"kfold\" (a holdout split is made once)", cv.repeats));
      cv.repeats = 1;
    } else if (cv.folds > kMaxFoldModels / cv.repeats) {
      diag_.error(s.where_of("repeats"), "cv.repeats",
                  fmt::format("folds x repeats = {} x {} is more than {} fold models", cv.folds, cv.repeats,
                              kMaxFoldModels));
      cv.repeats = 1;
    }
  }

  void check_run_folds(const Section& s, const CvConfig& cv) {
    std::set<std::int64_t> seen;
    for (std::int64_t fold : cv.run_folds) {
      if (fold >= cv.fold_models())
        diag_.error(s.where_of("run_folds"), "cv.run_folds",
                    cv.repeats > 1
                        ? fmt::format("fold {} does not exist: fold models are numbered 0 to {} (cv.folds = {} x "
                                      "cv.repeats = {})",
                                      fold, cv.fold_models() - 1, cv.folds, cv.repeats)
                        : fmt::format("fold {} does not exist: folds are numbered 0 to {} (cv.folds = {})", fold,
                                      cv.folds - 1, cv.folds));
      else if (!seen.insert(fold).second)
        diag_.error(s.where_of("run_folds"), "cv.run_folds", fmt::format("fold {} is listed twice", fold));
    }
  }

  void check_holdout(const Section& s, const CvConfig& cv) {
    double sum = 0;
    for (double f : cv.holdout) sum += f;
    if (cv.holdout.size() != 3 || std::fabs(sum - 1.0) > 1e-6)
      diag_.error(s.where_of("holdout"), "cv.holdout",
                  fmt::format("expected 3 fractions (train, validation, test) summing to 1, got {}",
                              to_toml(ParamValue{cv.holdout})));
  }

  // ---- across sections ----

  // A box detector cannot be trained with a mask loss nor scored with a mask metric: each
  // loss and metric declares the outputs it accepts, each model the one it produces.
  void check_output_pairing(const PluginSection& model, const PluginSection& loss) {
    if (!model.info) return;
    const OutputKind output = model.info->output;
    std::vector<const PluginSection*> consumers = {&loss};
    for (const PluginSection& m : metrics_) consumers.push_back(&m);
    for (const PluginSection* c : consumers) {
      if (!c->info || c->info->accepts_output(output)) continue;
      diag_.error(c->section.where_of("plugin"), c->section.key_path("plugin"),
                  fmt::format("{} \"{}\" requires {}, but model \"{}\" outputs {}", c == &loss ? "loss" : "metric",
                              c->plugin, to_string(c->info->accepts), model.plugin, to_string(output)));
    }
  }

  const toml::table& root_;
  const SchemaCatalog& catalog_;
  Diagnostics& diag_;
  std::vector<PluginSection> metrics_;  // as read, for the checks across sections
  struct DeferredRule {
    Section section;
    const ParamCheck* rule;
    Params own;
  };
  std::vector<DeferredRule> deferred_;
  std::map<std::string, Section> sections_;        // "dataset" -> where it is
  std::map<std::string, ParamValue> resolved_;     // "dataset.image_size" -> 63
};

}  // namespace

std::string config_detail::read_text_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ConfigError(fmt::format("{}: experiment file not found (or not a regular file)", path));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw ConfigError(fmt::format("{}: cannot read the experiment file", path));
  return text.str();
}

namespace config_detail {
toml::table parse_document(const std::string& text, const std::string& source_name) {
  try {
    return toml::parse(std::string_view(text), std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    // Nothing can be validated in a document that does not parse.
    throw ConfigError(fmt::format("{}:{}:{}: TOML syntax error: {}", source_name, e.source().begin.line,
                                  e.source().begin.column, e.description()));
  }
}

ExperimentConfig read_experiment_table(const toml::table& root, const SchemaCatalog& catalog, Diagnostics& diag) {
  return ExperimentReader(root, catalog, diag).read();
}
}  // namespace config_detail

ExperimentConfig parse_experiment(const std::string& toml_text, const std::string& source_name,
                                  const std::string& base_dir, const std::vector<std::string>& overrides,
                                  const SchemaCatalog& catalog) {
  toml::table root = parse_document(toml_text, source_name);
  Diagnostics diag(source_name);
  apply_overrides(root, overrides, diag);
  ExperimentConfig cfg = ExperimentReader(root, catalog, diag).read();
  if (!diag.empty()) diag.raise();
  cfg.source_file = source_name;
  cfg.base_dir = base_dir;
  return cfg;
}

ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                                 const SchemaCatalog& catalog) {
  const std::string text = read_text_file(path);
  // Absolute, so relative dataset paths keep meaning the same after a change of directory.
  const std::string base_dir = std::filesystem::absolute(path).parent_path().lexically_normal().string();
  return parse_experiment(text, path, base_dir, overrides, catalog);
}

}  // namespace chestlab

// The resolved form of an experiment: canonical TOML that reads back to the same config,
// and the hash that names it. Runs record this text; resume and rerun re-read it.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "chestlab/engine/config.h"
#include "chestlab/engine/split_file.h"
#include "chestlab/hash.h"
#include "chestlab/paths.h"
#include "chestlab/rng.h"

namespace chestlab {

namespace {

bool is_bare_key(const std::string& key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// Builds the document line by line in a fixed order; no map iteration whose order could
// depend on anything but the keys themselves.
class TomlWriter {
 public:
  void header(const std::string& text) {
    if (!out_.empty()) out_ += "\n";
    out_ += text + "\n";
  }
  void key(const std::string& name, const ParamValue& value) {
    out_ += (is_bare_key(name) ? name : to_toml(ParamValue{name})) + " = " + to_toml(value) + "\n";
  }
  // Plugin parameters: alphabetical (Params is an ordered map).
  void params(const Params& params) {
    for (const auto& [name, value] : params.values()) key(name, value);
  }
  std::string text() const { return out_; }

 private:
  std::string out_;
};

void write_experiment(TomlWriter& w, const ExperimentConfig& c) {
  w.header("[experiment]");
  w.key("name", c.name);
  w.key("seed", static_cast<std::int64_t>(c.seed));
  w.key("output", c.output);
}

void write_dataset(TomlWriter& w, const ExperimentConfig& c) {
  w.header("[dataset]");
  w.key("plugin", c.dataset.plugin);
  w.key("on_error", c.on_error);
  w.params(c.dataset.params);
  for (const AugmentConfig& a : c.augment) {
    w.header("[[dataset.augment]]");
    w.key("type", a.type);
    w.params(a.params);
  }
}

void write_component(TomlWriter& w, const std::string& section, const ComponentConfig& component) {
  w.header("[" + section + "]");
  w.key("plugin", component.plugin);
  w.params(component.params);
}

// Host keys (plugin, init...) first, then the plugin's parameters.
void write_model(TomlWriter& w, const ExperimentConfig& c) {
  w.header("[model]");
  w.key("plugin", c.model.plugin);
  w.key("init", c.model_init);
  w.key("init_rename", c.model_init_rename);
  w.key("init_partial", c.model_init_partial);
  w.params(c.model.params);
}

void write_optimizer(TomlWriter& w, const OptimizerConfig& o) {
  w.header("[optimizer]");
  w.key("name", o.name);
  w.key("lr", o.lr);
  w.key("weight_decay", o.weight_decay);
  w.key("betas", o.betas);
  w.key("momentum", o.momentum);
  w.key("nesterov", o.nesterov);
}

void write_scheduler(TomlWriter& w, const ExperimentConfig& c) {
  w.header("[scheduler]");
  w.key("plugin", c.scheduler.plugin);
  w.key("warmup_epochs", c.warmup_epochs);
  w.params(c.scheduler.params);
}

void write_metrics(TomlWriter& w, const std::vector<MetricConfig>& metrics) {
  for (const MetricConfig& m : metrics) {
    w.header("[[metrics]]");
    w.key("plugin", m.plugin);
    w.key("name", m.name);
    w.key("monitor", m.monitor);
    w.key("mode", std::string(m.maximize ? "max" : "min"));
    w.params(m.params);
  }
}

// The resolved file, or the text the hash is taken of. The hash text leaves out the keys that
// change only what is written beside a run (event files), never what it computes, and the
// keys added after run ids existed wherever they hold their default (the seeds equal to the
// experiment seed, no split file, fp32), so that the files written before keep their ids.
enum class Purpose { Resolved, Hash };

// A seed that follows the experiment seed unless set: always written in the resolved file
// (it records which seed made the folds, for resume and rerun), only when it differs in the
// hash text.
void write_seed(TomlWriter& w, std::uint64_t seed, std::uint64_t experiment_seed, Purpose purpose) {
  if (purpose == Purpose::Resolved || seed != experiment_seed) w.key("seed", static_cast<std::int64_t>(seed));
}

void write_train(TomlWriter& w, const ExperimentConfig& c, Purpose purpose) {
  const TrainConfig& t = c.train;
  w.header("[train]");
  w.key("epochs", t.epochs);
  w.key("batch_size", t.batch_size);
  w.key("device", t.device);
  w.key("workers", t.workers);
  w.key("prefetch", t.prefetch);
  w.key("threads", t.threads);
  w.key("grad_clip", t.grad_clip);
  w.key("early_stopping", t.early_stopping);
  w.key("deterministic", t.deterministic);
  if (purpose == Purpose::Resolved) {
    w.key("tensorboard", t.tensorboard);
    w.key("tensorboard_every", t.tensorboard_every);
  }
  write_seed(w, c.training_seed(), c.seed, purpose);
  // It changes the numbers, so it is hashed; left out at its default so that files written
  // before it existed keep their run ids.
  if (purpose == Purpose::Resolved || t.precision != "fp32") w.key("precision", t.precision);
}

void write_cv(TomlWriter& w, const ExperimentConfig& c, Purpose purpose) {
  const CvConfig& cv = c.cv;
  w.header("[cv]");
  w.key("mode", cv.mode);
  w.key("folds", cv.folds);
  // Left out of the hash at its default, so that files written before it keep their run ids.
  if (purpose == Purpose::Resolved || cv.repeats != 1) w.key("repeats", cv.repeats);
  w.key("stratify", cv.stratify);
  write_seed(w, c.fold_seed(), c.seed, purpose);
  // The hash names the split a file makes, not where the file is: an edited file gives new
  // run ids (a sweep does not skip runs trained on the old folds); a moved one keeps them.
  if (purpose == Purpose::Resolved)
    w.key("splits", cv.splits);
  else if (!cv.splits.empty())
    w.key("splits", "split " + split_file_digest(c.splits_path()));
  w.key("run_folds", cv.run_folds);
  w.key("holdout", cv.holdout);
  w.key("holdout_order", cv.holdout_order);
}

}  // namespace

const MetricConfig& ExperimentConfig::monitor() const {
  for (const MetricConfig& m : metrics)
    if (m.monitor) return m;
  // Configs built in code may leave the flag unset; the file rule applies: the first.
  if (metrics.empty()) throw std::logic_error("experiment '" + name + "' has no metrics to monitor");
  return metrics.front();
}

namespace {

std::string resolved_text(const ExperimentConfig& c, Purpose purpose) {
  TomlWriter w;
  write_experiment(w, c);
  write_dataset(w, c);
  write_model(w, c);
  write_component(w, "loss", c.loss);
  write_optimizer(w, c.optimizer);
  write_scheduler(w, c);
  write_metrics(w, c.metrics);
  write_train(w, c, purpose);
  write_cv(w, c, purpose);
  return w.text();
}

}  // namespace

const std::vector<std::string>& output_only_keys() {
  static const std::vector<std::string> keys = {"train.tensorboard", "train.tensorboard_every"};
  return keys;
}

bool is_output_only_key(const std::string& path) {
  const auto& keys = output_only_keys();
  return std::find(keys.begin(), keys.end(), path) != keys.end();
}

std::string ExperimentConfig::resolved_toml() const { return resolved_text(*this, Purpose::Resolved); }

std::string ExperimentConfig::hash() const { return to_hex(fnv1a64(resolved_text(*this, Purpose::Hash)), 12); }

std::string ExperimentConfig::splits_path() const { return resolve_path(cv.splits, base_dir); }

std::uint64_t ExperimentConfig::repeat_fold_seed(std::int64_t repeat) const {
  if (repeat == 0) return fold_seed();
  // A constant names the purpose, so that no other seed mixed from (fold seed, r) collides.
  return mix_seed({fold_seed(), 0x7265706561747321ull /* "repeats!" */, static_cast<std::uint64_t>(repeat)});
}

}  // namespace chestlab

// Experiment files: a TOML file naming the components of one experiment (dataset, model,
// loss, optimizer, scheduler, metrics) and how to train and cross-validate them.
//
// Loading validates everything at once against the schemas (the host's own sections and
// each plugin's parameters) and throws ONE ConfigError listing every problem with its
// `file:line:column`, key path and what is allowed, so a user fixes a file in one pass.
// The result is fully resolved: every default filled in, and `resolved_toml()` writes it
// back as canonical TOML that reproduces the same config (resume and rerun re-read it).
//
// Torch-free: lives in the engine (chestlab_engine); the host's plugin registry implements SchemaCatalog.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/component.h"
#include "chestlab/params.h"

namespace chestlab {

// What the validator needs to know about the installed components. Implemented by the
// host's plugin registry; the tests use a small fake.
struct SchemaCatalog {
  virtual ~SchemaCatalog() = default;
  // nullptr when no component of that kind has that name.
  virtual const ComponentInfo* find(Kind kind, const std::string& name) const = 0;
  virtual std::vector<std::string> names(Kind kind) const = 0;
  // Parameters of a data augmentation (including its probability `p`); nullptr if unknown.
  virtual const Schema* augmentation(const std::string& type) const = 0;
  virtual std::vector<std::string> augmentation_types() const = 0;
};

struct ComponentConfig {
  std::string plugin;
  Params params;  // the plugin's own parameters only, defaults filled
};

struct AugmentConfig {
  std::string type;
  Params params;
};

struct MetricConfig {
  std::string plugin;
  std::string name;      // column name in the results; unique; defaults to the plugin name
  bool monitor = false;  // the metric that selects the best epoch / drives early stopping
  bool maximize = true;  // mode = "max"
  Params params;
};

struct OptimizerConfig {
  std::string name;  // adam | adamw | sgd
  double lr = 1e-3;
  double weight_decay = 0;
  std::vector<double> betas;  // adam, adamw
  double momentum = 0.9;      // sgd
  bool nesterov = false;      // sgd
};

struct TrainConfig {
  std::int64_t epochs = 10;
  std::int64_t batch_size = 16;
  std::string device;  // auto | cpu | cuda | cuda:N
  std::int64_t workers = 2;
  std::int64_t prefetch = 4;  // batches queued ahead per loader
  std::int64_t threads = 0;   // 0 = the machine's cores
  double grad_clip = 0;       // 0 = off
  std::int64_t early_stopping = 0;  // epochs of patience; 0 = off
  bool deterministic = true;
  // [train] seed: the training's randomness (weight initialisation, sample order,
  // augmentation); unset = the experiment seed. See ExperimentConfig::training_seed().
  std::optional<std::uint64_t> seed;
  // TensorBoard event files (docs/tensorboard.md). Output only: not part of hash().
  bool tensorboard = false;
  std::int64_t tensorboard_every = 10;  // batches between per-batch events; 0 = epochs only
  // fp32 | bf16 | fp16: autocast of forward and loss (docs/experiment-format.md). Hashed
  // unless fp32.
  std::string precision = "fp32";
};

struct CvConfig {
  std::string mode;  // kfold | holdout
  std::int64_t folds = 5;
  // [cv] repeats: repeated k-fold, R fold assignments of `folds` folds each (kfold only).
  // Fold model r * folds + j validates fold j of repeat r.
  std::int64_t repeats = 1;
  bool stratify = true;
  // [cv] seed: the fold assignment (and a random holdout order); unset = the experiment seed.
  // See ExperimentConfig::fold_seed().
  std::optional<std::uint64_t> seed;
  // [cv] splits: a split file (engine/split_file.h) as written, relative to base_dir; "" = the
  // folds come from the seed.
  std::string splits;
  std::vector<std::int64_t> run_folds;  // empty = all folds
  std::vector<double> holdout;          // train, validation, test fractions
  std::string holdout_order;            // file | random

  // k-fold: the fold models a run trains, numbered 0 to folds x repeats - 1.
  std::int64_t fold_models() const { return folds * repeats; }
};

struct ExperimentConfig {
  std::string source_file;  // as given ("experiments/x.toml"), for messages
  std::string base_dir;     // absolute directory relative dataset paths resolve against

  std::string name;
  std::uint64_t seed = 42;
  std::string output;

  ComponentConfig dataset;
  std::vector<AugmentConfig> augment;
  std::string on_error;  // stop | skip

  ComponentConfig model, loss, scheduler;
  // [model] init: a torch.save file (as written, relative to base_dir), "" = none.
  std::string model_init;
  std::vector<std::string> model_init_rename;  // "from=to" name-prefix rewrites
  bool model_init_partial = false;
  std::int64_t warmup_epochs = 0;

  OptimizerConfig optimizer;
  std::vector<MetricConfig> metrics;  // at least one; exactly one has monitor = true
  TrainConfig train;
  CvConfig cv;

  const MetricConfig& monitor() const;
  // [experiment] seed is the root: it seeds the dataset (synthetic data derives from it) and
  // is the default of both seeds below, so a file that sets neither behaves as one seed did.
  std::uint64_t fold_seed() const { return cv.seed.value_or(seed); }
  // The seed of repeat r's fold assignment: fold_seed() for repeat 0 (so that repeats = 1
  // makes the folds it always made), a seed mixed from it and r for the others.
  std::uint64_t repeat_fold_seed(std::int64_t repeat) const;
  std::uint64_t training_seed() const { return train.seed.value_or(seed); }
  // [cv] splits resolved against base_dir; "" when unset.
  std::string splits_path() const;
  // Canonical TOML: every section and key, defaults filled, fixed order (host keys in
  // schema order, then plugin parameters alphabetically). Location-free: source_file and
  // base_dir are not part of it, so the same experiment hashes the same wherever it lives.
  std::string resolved_toml() const;
  // 12 hex digits of FNV-1a 64 of resolved_toml() without the output-only keys
  // (train.tensorboard, train.tensorboard_every): they change what is written beside a run,
  // never what it computes, and leave the hashes of files that do not set them as they were.
  // Likewise [cv] seed and [train] seed are left out when they equal the experiment seed and
  // [cv] splits when unset, and [train] precision when "fp32", so files written before they
  // existed keep their hashes (and run ids). A split file enters by its content
  // (split_file_digest), not its name: this reads the file, and throws DataError when it
  // cannot be read or parsed.
  std::string hash() const;
};

// Reads and validates an experiment file. `overrides` are "section.key=value" strings
// (`--set`); see docs/experiment-format.md. Throws ConfigError listing every error.
ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                                 const SchemaCatalog& catalog);

// Same from text already in memory. `source_name` prefixes error positions; `base_dir`
// is recorded as is.
ExperimentConfig parse_experiment(const std::string& toml_text, const std::string& source_name,
                                  const std::string& base_dir,
                                  const std::vector<std::string>& overrides,
                                  const SchemaCatalog& catalog);

// The keys that change only what is written beside a run (TensorBoard event files), never
// what it computes: "train.tensorboard", "train.tensorboard_every". They are in the resolved
// file but not in hash() (nor in sweep run ids), cannot be swept, and are no parameter
// column of `compare`.
const std::vector<std::string>& output_only_keys();
bool is_output_only_key(const std::string& path);

// Host-level schemas, for validation, docs and `describe`.
const Schema& experiment_section_schema();  // [experiment]
const Schema& optimizer_schema();           // [optimizer]
const Schema& train_schema();               // [train]
const Schema& cv_schema();                  // [cv]
const Schema& dataset_host_schema();        // [dataset] keys besides the plugin's parameters
const Schema& component_host_schema();      // [loss]: only `plugin`
const Schema& model_host_schema();          // [model]: `plugin` and the init keys
const Schema& scheduler_host_schema();      // [scheduler] keys besides the plugin's parameters
const Schema& metric_host_schema();         // [[metrics]] keys besides the plugin's parameters
const Schema& augment_host_schema();        // [[dataset.augment]] keys besides the augmentation's

// Every section an experiment file may have, in file order, for docs and `describe`.
struct HostSection {
  std::string name;       // "experiment", "dataset.augment", "metrics", ...
  std::string header;     // "[experiment]", "[[dataset.augment]]", "[[metrics]]"
  std::string summary;    // one line
  const Schema* schema;   // host-level keys
  bool plugin_params;     // also takes the named plugin's (or augmentation's) parameters
  bool required;          // the file must have it
};
const std::vector<HostSection>& host_sections();

}  // namespace chestlab

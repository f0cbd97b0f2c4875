// Sweeps: the `[sweep]` table of an experiment file expanded into runs, the sweep manifest,
// the (run, fold) units of a Slurm array and the merge of their per-fold files.
//
// A sweep point is a list of settings ("optimizer.lr" = 0.003) applied to the experiment like
// `--set` overrides, after the command line's own; every point is validated exactly like a
// normal experiment, and errors name the [sweep] entry that produced the value
// (file:line:column). A point's run id is derived from its resolved configuration only, so the
// same point always maps to the same run file, whatever the order of expansion.
// docs/sweeps.md describes the format and the commands.
//
// Torch-free: lives in the engine (chestlab_engine).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/engine/runfile.h"

namespace chestlab {

struct SweepSetting {
  std::string path;    // "optimizer.lr"
  std::string value;   // TOML text: 0.003, "relu", [0.9, 0.99]
  std::string origin;  // "exp.toml:12:20 (sweep.grid \"optimizer.lr\")", for messages

  std::string override_text() const { return path + "=" + value; }
};

struct SweepPoint {
  std::string label;  // variant name, or "" for a pure grid / random point
  std::vector<SweepSetting> settings;
  ExperimentConfig config;  // resolved and validated
  std::string run_id;       // sweep_run_id(config)

  std::vector<std::string> overrides() const;  // settings as `--set` texts
  // The TOML text of the setting for `path`, or "" when this point does not set it.
  std::string value_of(const std::string& path) const;
};

struct SweepPlan {
  bool has_sweep = false;           // the file has a [sweep] table (else one point, no settings)
  std::vector<std::string> swept;   // parameter paths set by some point, in first-seen order
  std::vector<SweepPoint> points;
  std::int64_t duplicates_skipped = 0;  // random samples equal to an earlier one
};

// Reads an experiment file with a [sweep] table and expands it. `overrides` are the command
// line's `--set` texts, applied to every point before its own settings. Throws ConfigError
// listing every problem (file:line:column and key of the [sweep] entry where it comes from).
SweepPlan expand_sweep(const std::string& path, const std::vector<std::string>& overrides,
                       const SchemaCatalog& catalog);
SweepPlan expand_sweep_text(const std::string& toml_text, const std::string& source_name,
                            const std::string& base_dir, const std::vector<std::string>& overrides,
                            const SchemaCatalog& catalog);

// 12 hex digits naming a sweep point's run: the config hash with experiment.output left out
// (where results are written does not change what is computed).
std::string sweep_run_id(const ExperimentConfig& config);

// The folds a run of this configuration trains: cv.run_folds, else every fold (0 for holdout).
std::vector<int> folds_of(const ExperimentConfig& config);

// ---- manifest ----------------------------------------------------------------------------

enum class SweepRunStatus { Pending, Running, Complete, Interrupted, Failed };
const char* to_string(SweepRunStatus status);

struct ManifestRun {
  std::string id;
  std::string label;
  std::vector<std::string> overrides;  // the point's settings, "path=value"
  SweepRunStatus status = SweepRunStatus::Pending;
  std::string file;  // run file, relative to the manifest's folder
};

struct SweepManifest {
  std::string experiment;
  std::string experiment_file;  // absolute
  std::vector<std::string> swept;
  std::vector<int> folds;
  std::string updated;
  std::vector<ManifestRun> runs;

  const ManifestRun* find(const std::string& id) const;
  // Value text of `path` in a run's overrides, "" when it does not set it.
  static std::string value_of(const ManifestRun& run, const std::string& path);
};

// Where a sweep keeps its files: <output>/<experiment name>/.
std::string sweep_dir(const ExperimentConfig& config);
std::string manifest_path(const std::string& sweep_dir);  // <dir>/sweep.toml
std::string run_file_path(const std::string& sweep_dir, const std::string& run_id);  // <dir>/<id>.h5
// The file one (run, fold) unit of a Slurm array writes: <dir>/units/<id>/fold<k>.h5.
std::string unit_file_path(const std::string& sweep_dir, const std::string& run_id, int fold);

SweepManifest make_manifest(const SweepPlan& plan, const std::string& experiment_file);
// Atomic (write a temporary file, rename). Throws std::runtime_error naming the file.
void write_manifest(const SweepManifest& manifest, const std::string& path);
// Throws DataError naming the file when it is missing or malformed.
SweepManifest read_manifest(const std::string& path);

// A run's status from its run file (Pending when absent; a file left "running" by a killed
// process reads as Interrupted unless `live` says a process is on it).
SweepRunStatus status_from_file(const std::string& run_file, bool live = false);

// The runs of a sweep for `chestlab compare`: given its folder (or its sweep.toml), every run
// file that exists, with the swept parameters (from the manifest; without one, the keys whose
// values differ between the recorded configurations). Throws DataError when there is none.
struct SweepResults {
  std::vector<RunInfo> runs;
  std::vector<std::string> labels;         // variant names ("" for none), per run
  std::vector<std::string> param_columns;  // parameter paths
  std::vector<std::vector<std::string>> params;  // per run, one TOML text per column ("" = unset)
  bool from_manifest = false;
};
SweepResults load_sweep_results(const std::string& dir_or_manifest);

// ---- Slurm units and their merge ---------------------------------------------------------

struct SweepUnit {
  std::size_t point = 0;  // index into SweepPlan::points
  int fold = 0;
};
// Units in array-task order: point by point, each point's folds in order.
std::vector<SweepUnit> sweep_units(const SweepPlan& plan);

struct MergeResult {
  int folds_merged = 0;
  bool run_complete = false;  // every fold of the run is finished in the run file
};

// Copies the finished folds of a point's unit files (unit_file_path) into its run file
// (created when absent), then writes the summary; when every fold is finished the run is
// marked complete (failed if a fold failed). Merged unit files are deleted afterwards. One
// merger at a time (the caller holds the sweep's lock); unit files still being written are
// left alone. Throws DataError when a unit file belongs to another run.
MergeResult merge_units(const std::string& sweep_dir, const SweepPoint& point);

}  // namespace chestlab

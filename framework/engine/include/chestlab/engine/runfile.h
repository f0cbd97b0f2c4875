// The run file: one HDF5 file per run holding its configuration, environment, per-fold
// history, splits and best weights, and the cross-fold summary. docs/results-format.md
// describes the layout for readers in other languages (h5py).
//
// Crash safety: the file on disk is only ever replaced atomically. Every change is a
// transaction that copies the file to a temporary of its own (`<path>.tmp-<host>-<pid>-<n>`),
// edits the copy, fsyncs it and renames it over `<path>`; so a kill at any moment leaves
// either the previous or the new complete file. No HDF5 handle stays open between
// transactions; readers may open the file whenever they like. Not thread-safe (HDF5 serial
// build).
//
// One writer per file: a RunFile holds an exclusive lock (FileLock, `<path>.lock`) from
// create/open until it is destroyed, so a second writer, in another process or this one,
// fails at once with FileLockedError naming the holder (pid, host, command line). The kernel
// drops the lock when its holder dies, so a lock file left by a killed process does not block;
// the next writer also deletes the temporaries such a process left behind.
//
// Torch-free: weights arrive as plain float arrays named like a PyTorch state_dict.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chestlab {

class FileLock;

enum class RunStatus { Running, Complete, Interrupted, Failed };
enum class FoldStatus { Pending, Running, Complete, Failed, Interrupted, StoppedEarly };
enum class MonitorMode { Max, Min };

// The strings stored in the file: "running", "stopped_early", "max", ...
const char* to_string(RunStatus status);
const char* to_string(FoldStatus status);
const char* to_string(MonitorMode mode);
bool parse_run_status(const std::string& text, RunStatus& out);
bool parse_fold_status(const std::string& text, FoldStatus& out);
bool parse_monitor_mode(const std::string& text, MonitorMode& out);
// Complete or stopped early: the fold ran to its end and counts in the summary.
bool is_finished(FoldStatus status);

// Current time as ISO 8601 UTC, e.g. "2024-05-01T12:34:56Z".
std::string utc_now_iso8601();

// Root attributes fixed when the run starts.
struct RunMeta {
  std::string experiment;
  std::string run_id;
  std::string config_hash;
  std::int64_t seed = 0;
  std::string monitor;  // metric that selects each fold's best epoch
  MonitorMode monitor_mode = MonitorMode::Max;
  // Repeated cross-validation ([cv] repeats > 1): [cv] folds, so that fold model k is fold
  // k % folds_per_repeat of repeat k / folds_per_repeat. 0 (and no attribute) otherwise.
  std::int64_t folds_per_repeat = 0;
};

// One loaded plugin library. `hash` is whatever the caller computed (hex SHA-256 by convention).
struct PluginRecord {
  std::string name;
  std::string kind;
  std::string version;
  std::string file;
  std::string hash;
};

struct Environment {
  std::string libtorch_version;
  std::string device;
  std::int64_t threads = 0;
  std::int64_t world_size = 1;   // processes of a `run --distributed` (1 otherwise); rerunning needs it
  std::string hostname;
  std::string git_commit = "unknown";
  std::string chestlab_version;  // when writing, empty means this library's version
  std::string experiment_file;   // the experiment file as given on the command line
  std::string base_dir;          // where its relative paths resolve (resume needs it)
  std::vector<PluginRecord> plugins;
};

// Per-image values of one evaluation, for the metrics that offer them (a metric whose value
// is the mean over images of a per-image score; see docs/writing-a-plugin.md): `ids` in
// evaluation order, `values[m][i]` the value of `metrics[m]` on image `ids[i]`. Empty when no
// metric offers them.
struct PerImageScores {
  std::vector<std::string> ids;
  std::vector<std::string> metrics;
  std::vector<std::vector<double>> values;  // one column per metric, each ids.size() long

  bool empty() const { return metrics.empty(); }
  // The metric's column; nullptr when it has none.
  const std::vector<double>* column(const std::string& metric) const;
};

// One completed epoch. `metrics` follows the fold's metric names (given to begin_fold).
struct HistoryRow {
  std::int64_t epoch = 0;
  double lr = 0;
  double train_loss = 0;
  double val_loss = 0;
  double seconds = 0;
  std::vector<double> metrics;
  // This epoch's validation image by image. Not part of the history table: the run file keeps
  // it for the best epoch only (set_fold_per_image).
  PerImageScores per_image;
};

// A parameter or buffer. An empty shape is a scalar (one value).
struct NamedArray {
  std::string name;  // state_dict key, e.g. "stages.0.conv.weight"
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major
};

// What a trainer needs to continue a fold after its last recorded epoch, stored opaquely under
// /folds/<k>/resume: the epoch to continue at and named byte strings (e.g. LibTorch archives
// of the model and optimizer state).
struct ResumeBlob {
  std::int64_t next_epoch = 0;
  std::map<std::string, std::string> parts;
};

struct SkippedSample {
  std::string id;
  std::string file;
  std::string reason;
};

struct MetricValue {
  std::string metric;
  double value = 0;
};

// Mean and sample standard deviation (ddof = 1; 0 for one fold; NaN for none) of a metric's
// value at the best epoch of every finished fold.
struct SummaryRow {
  std::string metric;
  double mean = 0;
  double std = 0;
  std::int64_t n_folds = 0;
};

struct FoldInfo {
  int index = 0;
  int repeat = 0;  // index / RunMeta::folds_per_repeat, 0 without repeats
  FoldStatus status = FoldStatus::Pending;
  std::int64_t best_epoch = -1;  // -1: no best yet
  double best_value = std::numeric_limits<double>::quiet_NaN();
  std::string error;  // empty unless failed
  std::vector<std::string> metric_names;
  std::vector<HistoryRow> history;
  std::vector<std::string> train_ids;
  std::vector<std::string> val_ids;
  // Best weights in the order they were first written. Names and shapes are always read;
  // `values` only with LoadWeights::Yes.
  std::vector<NamedArray> weights;
  // The best epoch's validation image by image (/folds/<k>/per_image); empty when no metric
  // offered per-image values or the file predates them.
  PerImageScores per_image;
  std::int64_t per_image_epoch = -1;

  const HistoryRow* row_for_epoch(std::int64_t epoch) const;
  // The metric's value in the best epoch's row; nullopt without a best epoch or metric.
  std::optional<double> best_metric(const std::string& metric) const;
};

struct RunInfo {
  std::string path;
  std::string chestlab_version;
  RunMeta meta;
  RunStatus status = RunStatus::Running;
  std::string created;
  std::string finished;  // empty until set_finished_now()
  std::string config_toml;
  Environment environment;
  std::vector<FoldInfo> folds;  // sorted by index; indices may have gaps
  std::vector<SummaryRow> summary;  // as stored by the last write_summary(); may be empty
  std::vector<SkippedSample> skipped;
  std::vector<MetricValue> test;  // empty unless a holdout test was written
  PerImageScores test_per_image;  // the holdout test image by image (/test_per_image), or empty

  const FoldInfo* fold(int index) const;  // nullptr when absent
};

enum class LoadWeights { No, Yes };

// Reads a run file. Throws DataError (naming the file) when it is missing, not HDF5, not a
// chestlab run file or malformed.
RunInfo read_run(const std::string& path, LoadWeights weights = LoadWeights::Yes);

// The fold's resume state; nullopt when the fold or its state is absent (no epoch recorded
// yet). Throws like read_run.
std::optional<ResumeBlob> read_fold_resume(const std::string& path, int k);

// The summary of the given folds (what write_summary() stores): metrics in order of first
// appearance among the finished folds that have a best epoch.
std::vector<SummaryRow> compute_summary(const std::vector<FoldInfo>& folds);

// The edits of one transaction. Valid only inside RunFile::transaction's callback. Every
// failure throws std::runtime_error naming the run file and what failed; the transaction
// then leaves the file as it was.
class RunWriter {
 public:
  void set_status(RunStatus status);
  void set_finished_now();

  // Creates /folds/<k> with an empty history whose metric columns are `metric_names`.
  // Fails when the fold exists (remove_fold first to restart it).
  void begin_fold(int k, const std::vector<std::string>& metric_names,
                  const std::vector<std::string>& train_ids, const std::vector<std::string>& val_ids,
                  FoldStatus initial_status = FoldStatus::Running);
  // Deletes a fold. HDF5 does not reclaim its space (h5repack does).
  void remove_fold(int k);
  // Epochs must increase strictly within a fold; row.metrics must match the metric names.
  void append_epoch(int k, const HistoryRow& row);
  void set_fold_status(int k, FoldStatus status, const std::string& error = "");
  // Records the best epoch (which must already have a history row) and replaces the fold's
  // weights. Arrays whose name and shape are unchanged are overwritten in place, so the file
  // does not grow with every improvement.
  void set_fold_best(int k, std::int64_t epoch, double value, const std::vector<NamedArray>& weights);
  // Replaces /folds/<k>/per_image with the values of epoch `epoch`'s validation (written with
  // set_fold_best, so that they describe the best weights). Empty scores remove it. Throws
  // std::runtime_error when a column's length differs from ids or a metric name is empty,
  // repeated or "id".
  void set_fold_per_image(int k, std::int64_t epoch, const PerImageScores& scores);
  // Replaces the fold's resume state. Parts keep their storage when rewritten (chunked, resized
  // in place), so saving it every epoch does not grow the file.
  void set_fold_resume(int k, const ResumeBlob& blob);
  // Recomputes /summary from the folds as they are in this transaction.
  void write_summary();
  // Appends to /skipped unless a sample with the same id and file is listed already.
  void add_skipped(const std::string& id, const std::string& file, const std::string& reason);
  // Replaces /test.
  void write_test(const std::vector<MetricValue>& values);
  // Replaces /test_per_image (checked like set_fold_per_image); empty scores remove it.
  void write_test_per_image(const PerImageScores& scores);

 private:
  friend class RunFile;
  RunWriter(std::int64_t file_id, std::string path) : file_id_(file_id), path_(std::move(path)) {}
  std::int64_t file_id_;  // hid_t of the open temporary copy
  std::string path_;      // the run file, for error messages
};

class RunFile {
 public:
  // Writes a new run file (status "running"), creating parent directories. Fails when
  // `path` exists: a run file is never overwritten. Both throw FileLockedError when another
  // writer holds the file (see above).
  static RunFile create(const std::string& path, const RunMeta& meta, const std::string& config_toml,
                        const Environment& env);
  // An existing run file, e.g. to resume it. Throws DataError when it is not a run file.
  static RunFile open(const std::string& path);

  // Applies `edit` atomically; durable on disk when this returns. If `edit` (or the commit)
  // throws, the file is unchanged and the exception propagates.
  void transaction(const std::function<void(RunWriter&)>& edit);

  RunInfo read(LoadWeights weights = LoadWeights::Yes) const;
  const std::string& path() const { return path_; }

 private:
  RunFile(std::string path, std::shared_ptr<FileLock> lock) : path_(std::move(path)), lock_(std::move(lock)) {}
  std::string path_;
  std::shared_ptr<FileLock> lock_;  // held while any copy of this RunFile lives
};

}  // namespace chestlab

// The sweep manifest (<results>/<experiment>/sweep.toml), Slurm (run, fold) units and the
// merge of their per-fold files into run files. See sweep.h.
#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "chestlab/engine/sweep.h"

namespace fs = std::filesystem;

namespace chestlab {

namespace {

std::string quote(const std::string& s) { return to_toml(ParamValue{s}); }

std::string string_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quote(items[i]);
  return out + "]";
}

bool parse_sweep_status(const std::string& text, SweepRunStatus& out) {
  for (SweepRunStatus s : {SweepRunStatus::Pending, SweepRunStatus::Running, SweepRunStatus::Complete,
                           SweepRunStatus::Interrupted, SweepRunStatus::Failed})
    if (text == to_string(s)) {
      out = s;
      return true;
    }
  return false;
}

}  // namespace

const char* to_string(SweepRunStatus status) {
  switch (status) {
    case SweepRunStatus::Pending: return "pending";
    case SweepRunStatus::Running: return "running";
    case SweepRunStatus::Complete: return "complete";
    case SweepRunStatus::Interrupted: return "interrupted";
    case SweepRunStatus::Failed: return "failed";
  }
  return "pending";
}

const ManifestRun* SweepManifest::find(const std::string& id) const {
  for (const ManifestRun& r : runs)
    if (r.id == id) return &r;
  return nullptr;
}

std::string SweepManifest::value_of(const ManifestRun& run, const std::string& path) {
  for (const std::string& o : run.overrides)
    if (o.size() > path.size() && o.compare(0, path.size(), path) == 0 && o[path.size()] == '=')
      return o.substr(path.size() + 1);
  return "";
}

std::string sweep_dir(const ExperimentConfig& config) { return (fs::path(config.output) / config.name).string(); }
std::string manifest_path(const std::string& dir) { return (fs::path(dir) / "sweep.toml").string(); }
std::string run_file_path(const std::string& dir, const std::string& run_id) {
  return (fs::path(dir) / (run_id + ".h5")).string();
}
std::string unit_file_path(const std::string& dir, const std::string& run_id, int fold) {
  return (fs::path(dir) / "units" / run_id / fmt::format("fold{}.h5", fold)).string();
}

SweepManifest make_manifest(const SweepPlan& plan, const std::string& experiment_file) {
  SweepManifest m;
  m.experiment_file = fs::absolute(experiment_file).lexically_normal().string();
  m.swept = plan.swept;
  if (!plan.points.empty()) {
    m.experiment = plan.points.front().config.name;
    m.folds = folds_of(plan.points.front().config);
  }
  for (const SweepPoint& p : plan.points)
    m.runs.push_back(ManifestRun{p.run_id, p.label, p.overrides(), SweepRunStatus::Pending, p.run_id + ".h5"});
  return m;
}

void write_manifest(const SweepManifest& m, const std::string& path) {
  std::string text =
      "# Written by `chestlab sweep`; rewritten (statuses from the run files) every time it runs. Do not edit.\n";
  text += fmt::format("experiment = {}\nexperiment_file = {}\nswept = {}\n", quote(m.experiment),
                      quote(m.experiment_file), string_list(m.swept));
  std::string folds = "[";
  for (std::size_t i = 0; i < m.folds.size(); ++i) folds += (i ? ", " : "") + std::to_string(m.folds[i]);
  text += "folds = " + folds + "]\n";
  text += fmt::format("updated = {}\n", quote(utc_now_iso8601()));
  for (const ManifestRun& r : m.runs) {
    text += fmt::format("\n[[run]]\nid = {}\nlabel = {}\noverrides = {}\nstatus = {}\nfile = {}\n", quote(r.id),
                        quote(r.label), string_list(r.overrides), quote(to_string(r.status)), quote(r.file));
  }
  // Every value is escaped, but TOML holds only UTF-8: a file path that is not (Linux allows
  // any bytes) would make a manifest that no later sweep or compare could read.
  try {
    (void)toml::parse(text);
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("{}: the sweep manifest would not read back ({}); is the experiment file's path "
                                  "({}) valid UTF-8? Rename it or its folder",
                                  path, e.description(), m.experiment_file));
  }
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = path + fmt::format(".tmp{}", static_cast<long>(getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(tmp + ": cannot write the sweep manifest");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(path + ": cannot replace the sweep manifest: " + ec.message());
}

SweepManifest read_manifest(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw DataError(path, fmt::format("not a sweep manifest: {} (line {})", e.description(), e.source().begin.line));
  }
  auto str = [&](const toml::node_view<const toml::node>& v, const std::string& what) {
    if (!v.is_string()) throw DataError(path, "sweep manifest lacks " + what);
    return v.as_string()->get();
  };
  auto strings = [&](const toml::node_view<const toml::node>& v) {
    std::vector<std::string> out;
    if (const toml::array* a = v.as_array())
      for (const toml::node& n : *a)
        if (n.is_string()) out.push_back(n.as_string()->get());
    return out;
  };
  const toml::table& ct = t;
  SweepManifest m;
  m.experiment = str(ct["experiment"], "experiment");
  m.experiment_file = str(ct["experiment_file"], "experiment_file");
  m.swept = strings(ct["swept"]);
  if (const toml::array* folds = ct["folds"].as_array())
    for (const toml::node& n : *folds)
      if (n.is_integer()) m.folds.push_back(static_cast<int>(n.as_integer()->get()));
  if (ct["updated"].is_string()) m.updated = ct["updated"].as_string()->get();
  if (const toml::array* runs = ct["run"].as_array()) {
    for (const toml::node& n : *runs) {
      const toml::table* r = n.as_table();
      if (!r) throw DataError(path, "sweep manifest: [[run]] is not a table");
      toml::node_view<const toml::node> v{r};
      ManifestRun run;
      run.id = str(v["id"], "run.id");
      if (v["label"].is_string()) run.label = v["label"].as_string()->get();
      run.overrides = strings(v["overrides"]);
      if (!parse_sweep_status(str(v["status"], "run.status"), run.status))
        throw DataError(path, "sweep manifest: unknown status of run " + run.id);
      run.file = str(v["file"], "run.file");
      m.runs.push_back(std::move(run));
    }
  }
  return m;
}

SweepRunStatus status_from_file(const std::string& run_file, bool live) {
  std::error_code ec;
  if (!fs::exists(run_file, ec)) return SweepRunStatus::Pending;
  try {
    switch (read_run(run_file, LoadWeights::No).status) {
      case RunStatus::Complete: return SweepRunStatus::Complete;
      case RunStatus::Failed: return SweepRunStatus::Failed;
      case RunStatus::Interrupted: return SweepRunStatus::Interrupted;
      case RunStatus::Running: return live ? SweepRunStatus::Running : SweepRunStatus::Interrupted;
    }
  } catch (const std::exception&) {
    return SweepRunStatus::Failed;
  }
  return SweepRunStatus::Failed;
}

SweepResults load_sweep_results(const std::string& where) {
  SweepResults out;
  std::error_code ec;
  const bool is_dir = fs::is_directory(where, ec);
  const std::string manifest = is_dir ? manifest_path(where) : where;
  const std::string dir = is_dir ? where : fs::path(where).parent_path().string();
  if (fs::is_regular_file(manifest, ec)) {
    const SweepManifest m = read_manifest(manifest);
    out.from_manifest = true;
    out.param_columns = m.swept;
    for (const ManifestRun& r : m.runs) {
      const std::string file = (fs::path(dir) / r.file).string();
      if (!fs::is_regular_file(file, ec)) continue;
      out.runs.push_back(read_run(file, LoadWeights::No));
      out.labels.push_back(r.label);
      std::vector<std::string> values;
      for (const std::string& path : m.swept) values.push_back(SweepManifest::value_of(r, path));
      out.params.push_back(std::move(values));
    }
  } else if (is_dir) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(where, ec))
      if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      out.runs.push_back(read_run(f, LoadWeights::No));
      out.labels.emplace_back();
    }
    if (out.runs.size() > 1) out.param_columns = differing_config_paths(out.runs);
    for (const RunInfo& run : out.runs) {
      std::vector<std::string> values;
      for (const std::string& path : out.param_columns) values.push_back(config_value(run.config_toml, path));
      out.params.push_back(std::move(values));
    }
  } else {
    throw DataError(where, "neither a sweep folder nor a sweep manifest");
  }
  if (out.runs.empty()) throw DataError(where, "no run files yet (run `chestlab sweep` first)");
  return out;
}

std::vector<SweepUnit> sweep_units(const SweepPlan& plan) {
  std::vector<SweepUnit> units;
  for (std::size_t i = 0; i < plan.points.size(); ++i)
    for (int k : folds_of(plan.points[i].config)) units.push_back({i, k});
  return units;
}

MergeResult merge_units(const std::string& dir, const SweepPoint& point) {
  MergeResult result;
  const std::string target_path = run_file_path(dir, point.run_id);
  const std::vector<int> folds = folds_of(point.config);
  std::optional<RunFile> target;
  std::error_code ec;
  if (fs::exists(target_path, ec)) target = RunFile::open(target_path);
  std::vector<std::string> merged;
  for (int k : folds) {
    const std::string unit_path = unit_file_path(dir, point.run_id, k);
    if (!fs::exists(unit_path, ec)) continue;
    RunInfo unit = read_run(unit_path, LoadWeights::Yes);
    if (unit.meta.run_id != point.run_id)
      throw DataError(unit_path, fmt::format("belongs to run {}, not {} (was the experiment file changed?)",
                                             unit.meta.run_id, point.run_id));
    // Only a unit whose process has finished: its last transaction is written.
    if (unit.status != RunStatus::Complete && unit.status != RunStatus::Failed) continue;
    const FoldInfo* fold = unit.fold(k);
    if (!fold || !(is_finished(fold->status) || fold->status == FoldStatus::Failed)) continue;
    if (!target) {
      RunMeta meta = unit.meta;
      meta.config_hash = point.config.hash();
      target = RunFile::create(target_path, meta, point.config.resolved_toml(), unit.environment);
    }
    const RunInfo now = target->read(LoadWeights::No);
    const FoldInfo* existing = now.fold(k);
    if (!existing || !is_finished(existing->status)) {
      target->transaction([&](RunWriter& w) {
        if (existing) w.remove_fold(k);
        w.begin_fold(k, fold->metric_names, fold->train_ids, fold->val_ids, FoldStatus::Running);
        for (const HistoryRow& row : fold->history) w.append_epoch(k, row);
        if (fold->best_epoch >= 0) w.set_fold_best(k, fold->best_epoch, fold->best_value, fold->weights);
        w.set_fold_status(k, fold->status, fold->error);
        for (const SkippedSample& s : unit.skipped) w.add_skipped(s.id, s.file, s.reason);
        if (!unit.test.empty()) w.write_test(unit.test);
      });
      ++result.folds_merged;
    }
    merged.push_back(unit_path);
  }
  if (target) {
    const RunInfo now = target->read(LoadWeights::No);
    bool all = true, failed = false;
    for (int k : folds) {
      const FoldInfo* f = now.fold(k);
      if (!f || !(is_finished(f->status) || f->status == FoldStatus::Failed)) all = false;
      else if (f->status == FoldStatus::Failed) failed = true;
    }
    if (result.folds_merged > 0 || (all && now.status != RunStatus::Complete && now.status != RunStatus::Failed)) {
      target->transaction([&](RunWriter& w) {
        w.write_summary();
        w.set_status(all ? (failed ? RunStatus::Failed : RunStatus::Complete) : RunStatus::Interrupted);
        if (all) w.set_finished_now();
      });
    }
    result.run_complete = all && !failed;
  }
  // The run file now holds these folds durably; the unit files are redundant.
  for (const std::string& p : merged) fs::remove(p, ec);
  fs::remove(fs::path(dir) / "units" / point.run_id, ec);  // only when empty
  fs::remove(fs::path(dir) / "units", ec);
  return result;
}

}  // namespace chestlab

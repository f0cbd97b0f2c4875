// `chestlab run`: assembles an experiment, trains its folds and records everything in one
// run file, crash-safe epoch by epoch, resumable after an interruption.
#pragma once

#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"

namespace chestlab {

struct RunRequest {
  std::string experiment_file;          // a new run (empty when resuming)
  std::vector<std::string> overrides;   // --set, plus --folds/--device/--output turned into overrides
  std::string resume;                   // --resume RUN.h5
  // A new run from configuration text instead of a file (`chestlab rerun`: a run file's
  // recorded /config); relative paths resolve against `base_dir`, as recorded.
  std::string config_toml;
  std::string config_source;            // names the text in messages, e.g. "RUN.h5:/config"
  std::string base_dir;
  std::string run_id;                   // a new run's id; empty: make_run_id(config hash) (sweeps fix it)
  std::string run_path;                 // a new run's file; empty: <output>/<name>/<run id>.h5
  std::vector<std::string> plugin_dirs; // --plugin-path
  bool verbose = true;                  // progress and tables on stdout
  // --distributed: one rank of a data-parallel run (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
  // chestlab/host/distributed.h). Only rank 0 writes the run file; the others return an empty path.
  bool distributed = false;
};

struct RunOutcome {
  std::string path;   // the run file
  RunStatus status = RunStatus::Running;
  int exit_code = 0;  // 0 complete, 130 interrupted, 1 a fold failed
};

RunOutcome run_experiment(const RunRequest& request);

// "<YYYYmmdd-HHMMSS>-<config hash>" in UTC.
std::string make_run_id(const std::string& config_hash);

}  // namespace chestlab

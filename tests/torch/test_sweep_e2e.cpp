// `chestlab sweep` end to end on tests/data/tiny_sweep.toml (2 runs x 2 folds): parallel
// --jobs 2, a sweep stopped midway and restarted, and the Slurm array on a real local Slurm
// (tests/slurm/local_slurm.sh; skipped with a message where Slurm cannot start).
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "chestlab/engine/runfile.h"
#include "chestlab/engine/sweep.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

std::string sweep_toml() { return (source_dir() / "tests" / "data" / "tiny_sweep.toml").string(); }

int sweep(const std::string& args, std::string* out = nullptr, const std::string& env = "") {
  return run_command(env + shell_quote(chestlab_exe()) + " sweep " + shell_quote(sweep_toml()) + " " + args, out);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Both runs complete, 2 folds each, and fold k validates the same samples in both.
void require_complete_sweep(const fs::path& dir) {
  const SweepManifest m = read_manifest(manifest_path(dir.string()));
  REQUIRE(m.runs.size() == 2);
  std::vector<RunInfo> runs;
  for (const ManifestRun& r : m.runs) {
    INFO("run " << r.id);
    CHECK(r.status == SweepRunStatus::Complete);
    runs.push_back(read_run((dir / r.file).string(), LoadWeights::No));
    CHECK(runs.back().status == RunStatus::Complete);
    CHECK(runs.back().meta.run_id == r.id);
    REQUIRE(runs.back().folds.size() == 2);
    for (const FoldInfo& f : runs.back().folds) CHECK(f.history.size() == 3);
  }
  CHECK(runs[0].config_toml != runs[1].config_toml);
  for (int k = 0; k < 2; ++k) CHECK(runs[0].folds[k].val_ids == runs[1].folds[k].val_ids);
}

}  // namespace

TEST_CASE("sweep --jobs 2 runs both points at once with the cores divided", "[e2e][sweep]") {
  const fs::path out = scratch_dir("sweep_jobs");
  std::string log;
  REQUIRE(sweep("--dry-run --results " + shell_quote(out.string()), &log) == 0);
  CHECK_THAT(log, Catch::Contains("2 run(s) x 2 fold(s) = 4 (run, fold) unit(s)"));
  CHECK_FALSE(fs::exists(out / "tiny_sweep" / "sweep.toml"));  // a dry run writes nothing

  REQUIRE(sweep("--jobs 2 --results " + shell_quote(out.string()), &log) == 0);
  INFO(log);
  const fs::path dir = out / "tiny_sweep";
  require_complete_sweep(dir);
  // Both started before either finished; each had half the cores.
  const auto first_done = log.find(" complete (exit 0)");
  CHECK(log.find("[1/2] start") < first_done);
  CHECK(log.find("[2/2] start") < first_done);
  const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  CHECK_THAT(log, Catch::Contains(std::to_string(threads) + " LibTorch thread(s) each"));
  for (const ManifestRun& r : read_manifest(manifest_path(dir.string())).runs)
    CHECK(read_run((dir / r.file).string(), LoadWeights::No).environment.threads == threads);
  // The sweep's table: one row per run with the learning rate as a column.
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " compare " + shell_quote(dir.string()) + " --format csv", &log) ==
          0);
  CHECK_THAT(log, Catch::StartsWith("metric,run,optimizer.lr,status,fold_0,fold_1,mean,std"));
  CHECK_THAT(log, Catch::Contains(",0.001,complete,") && Catch::Contains(",0.003,complete,"));
}

TEST_CASE("a sweep stopped midway and restarted completes without redoing finished runs", "[e2e][sweep]") {
  const fs::path out = scratch_dir("sweep_resume");
  const fs::path dir = out / "tiny_sweep";
  const int pid = spawn_process({chestlab_exe(), "sweep", sweep_toml(), "--results", out.string()},
                                (out / "first.log").string());
  REQUIRE(pid > 0);
  // Stop the sweep once its first run is complete and the second has its run file.
  std::string first_id, second_file;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(manifest_path(dir.string()))) {
      const SweepManifest m = read_manifest(manifest_path(dir.string()));
      const std::string a = (dir / m.runs[0].file).string(), b = (dir / m.runs[1].file).string();
      if (status_from_file(a) == SweepRunStatus::Complete && fs::exists(b)) {
        first_id = m.runs[0].id;
        second_file = b;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_FALSE(first_id.empty());
  kill(pid, SIGTERM);
  const int code = wait_process(pid);
  INFO(read_text(out / "first.log"));
  const RunInfo second = read_run(second_file, LoadWeights::No);
  if (second.status == RunStatus::Complete) {
    WARN("the second run finished before the stop arrived; only the skip is tested");
    CHECK(code == 0);
  } else {
    CHECK(code == 130);
    CHECK(read_manifest(manifest_path(dir.string())).runs[1].status == SweepRunStatus::Interrupted);
  }
  const fs::path first_file = dir / (first_id + ".h5");
  const auto first_mtime = fs::last_write_time(first_file);

  std::string log;
  REQUIRE(sweep("--results " + shell_quote(out.string()), &log) == 0);
  INFO(log);
  CHECK_THAT(log, Catch::Contains("2 run(s), 1 complete, 1 to run"));
  CHECK_THAT(log, Catch::Contains("[2/2] resume"));
  CHECK(log.find("[1/2]") == std::string::npos);  // the complete run is not started again
  CHECK(fs::last_write_time(first_file) == first_mtime);
  require_complete_sweep(dir);
  // Resumed, not restarted: epochs run before the stop are still the first rows.
  const RunInfo resumed = read_run(second_file, LoadWeights::No);
  for (const FoldInfo& f : second.folds)
    for (std::size_t e = 0; e < f.history.size(); ++e)
      CHECK(resumed.fold(f.index)->history[e].seconds == f.history[e].seconds);

  // A third time: nothing to do.
  REQUIRE(sweep("--results " + shell_quote(out.string()), &log) == 0);
  CHECK_THAT(log, Catch::Contains("2 complete, 0 to run"));
}

TEST_CASE("the Slurm array runs every (run, fold) unit and merges them", "[e2e][sweep][slurm]") {
  const fs::path out = scratch_dir("sweep_slurm");
  const fs::path state = out / "slurm-state";
  const std::string script = (source_dir() / "tests" / "slurm" / "local_slurm.sh").string();
  std::string started;
  const int rc = run_command("bash " + shell_quote(script) + " start " + shell_quote(state.string()), &started);
  if (rc != 0) {
    WARN("SKIPPED: no local Slurm: " << started);
    return;
  }
  struct Stop {
    std::string command;
    ~Stop() { run_command(command); }
  } stop{"bash " + shell_quote(script) + " stop " + shell_quote(state.string())};
  const std::string env = "SLURM_CONF=" + shell_quote((state / "slurm.conf").string()) + " ";

  std::string log;
  REQUIRE(sweep("--slurm --submit --cpus-per-task 1 --time 5:00 --results " + shell_quote(out.string()), &log, env) ==
          0);
  INFO(log);
  CHECK_THAT(log, Catch::Contains("(4 array task(s): --array=0-3)"));
  const fs::path dir = out / "tiny_sweep";
  const std::string sbatch = read_text(dir / "slurm" / "sweep.sbatch");
  CHECK_THAT(sbatch, Catch::Contains("#SBATCH --array=0-3") && Catch::Contains("--task \"$SLURM_ARRAY_TASK_ID\"") &&
                         Catch::Contains("#SBATCH --time=5:00") && Catch::Contains("#SBATCH --cpus-per-task=1"));

  // Wait for the array and the merge job that depends on it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(100);
  std::string queue = "?";
  while (std::chrono::steady_clock::now() < deadline) {
    if (run_command(env + "squeue -h", &queue) == 0 && queue.find_first_not_of(" \n") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  INFO("squeue: " << queue);
  std::string logs;
  for (const auto& e : fs::directory_iterator(dir / "slurm" / "logs"))
    logs += e.path().filename().string() + ":\n" + read_text(e.path()) + "\n";
  INFO(logs);
  CHECK_THAT(logs, Catch::Contains("merged 4 fold unit(s)"));
  require_complete_sweep(dir);
  CHECK_FALSE(fs::exists(dir / "units" / read_manifest(manifest_path(dir.string())).runs[0].id));
  // The same points as a local sweep: the same run ids.
  REQUIRE(sweep("--dry-run --results " + shell_quote((out / "elsewhere").string()), &log) == 0);
  for (const ManifestRun& r : read_manifest(manifest_path(dir.string())).runs) CHECK_THAT(log, Catch::Contains(r.id));
  // Running it locally now has nothing left to do.
  REQUIRE(sweep("--results " + shell_quote(out.string()), &log) == 0);
  CHECK_THAT(log, Catch::Contains("2 complete, 0 to run"));
}

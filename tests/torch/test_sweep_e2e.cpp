// `chestlab sweep` end to end on tests/data/tiny_sweep.toml (2 runs x 2 folds): parallel
// --jobs 2, a sweep stopped midway and restarted, a sweep killed with SIGKILL (its runs must
// stop by themselves) and resumed, the sweep lock, --retry-failed, and the Slurm array on a
// real local Slurm (tests/slurm/local_slurm.sh; skipped with a message where Slurm cannot
// start).
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

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
void require_complete_sweep(const fs::path& dir, std::size_t epochs = 3) {
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
    for (const FoldInfo& f : runs.back().folds) CHECK(f.history.size() == epochs);
  }
  CHECK(runs[0].config_toml != runs[1].config_toml);
  for (int k = 0; k < 2; ++k) CHECK(runs[0].folds[k].val_ids == runs[1].folds[k].val_ids);
}

// A process as /proc shows it: its parent, and its start time (to tell a reused pid).
struct ProcStat {
  bool exists = false, zombie = false;
  long ppid = 0;
  unsigned long long start = 0;
};

ProcStat proc_stat(long pid) {
  ProcStat out;
  const std::string text = read_text(fs::path("/proc") / std::to_string(pid) / "stat");
  const auto close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (text.empty() || close == std::string::npos) return out;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; fields >> w;) f.push_back(w);
  if (f.size() < 20) return out;
  out.exists = true;
  out.zombie = f[0] == "Z" || f[0] == "X";
  out.ppid = std::stol(f[1]);
  out.start = std::stoull(f[19]);  // field 22 of stat: starttime
  return out;
}

// The live children of `parent` (pid -> start time).
std::map<long, unsigned long long> children_of(long parent) {
  std::map<long, unsigned long long> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const ProcStat s = proc_stat(std::stol(name));
    if (s.exists && !s.zombie && s.ppid == parent) out[std::stol(name)] = s.start;
  }
  return out;
}

bool still_running(long pid, unsigned long long start) {
  const ProcStat s = proc_stat(pid);
  return s.exists && !s.zombie && s.start == start;
}

// Whether process `pid` has `file` open (its /proc/PID/fd links).
bool holds_open(long pid, const fs::path& file) {
  std::error_code ec;
  const fs::path target = fs::canonical(file, ec);
  for (const auto& e : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "fd", ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(e.path(), link_ec) == target) return true;
  }
  return false;
}

int epochs_recorded(const std::string& file) {
  try {
    int n = 0;
    for (const FoldInfo& f : read_run(file, LoadWeights::No).folds) n += static_cast<int>(f.history.size());
    return n;
  } catch (const std::exception&) {
    return 0;  // not created yet
  }
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

TEST_CASE("a sweep killed with SIGKILL leaves no run training, and the next sweep resumes its runs",
          "[e2e][sweep][kill9]") {
  const fs::path out = scratch_dir("sweep_kill9");
  const fs::path dir = out / "tiny_sweep";
  // 8 epochs: both runs are surely mid-way when the sweep is killed.
  const int pid = spawn_process({chestlab_exe(), "sweep", sweep_toml(), "--jobs", "2", "--set", "train.epochs=8",
                                 "--output", out.string()},
                                (out / "first.log").string());
  REQUIRE(pid > 0);
  // Wait until both runs are training: two children, each with an epoch in its run file.
  std::map<long, unsigned long long> children;
  std::vector<std::string> files;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(manifest_path(dir.string()))) {
      files.clear();
      for (const ManifestRun& r : read_manifest(manifest_path(dir.string())).runs)
        files.push_back((dir / r.file).string());
      children = children_of(pid);
      if (children.size() == 2 && files.size() == 2 && epochs_recorded(files[0]) > 0 && epochs_recorded(files[1]) > 0)
        break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(read_text(out / "first.log"));
  REQUIRE(children.size() == 2);
  REQUIRE(epochs_recorded(files[0]) > 0);
  REQUIRE(epochs_recorded(files[1]) > 0);
  for (const auto& [child, start] : children) {
    INFO("child " << child);
    // Each run is told its parent and holds the sweep lock until it has stopped.
    CHECK_THAT(read_text(fs::path("/proc") / std::to_string(child) / "environ"),
               Catch::Contains("CHESTLAB_PARENT_PID=" + std::to_string(pid) + std::string(1, '\0')));
    CHECK(holds_open(child, dir / ".sweep.lock"));
  }

  kill(pid, SIGKILL);
  CHECK(wait_process(pid) == 128 + SIGKILL);
  // The runs notice that the sweep is gone and stop after their batch, within seconds.
  const auto killed = std::chrono::steady_clock::now();
  bool any_alive = true;
  while (any_alive && std::chrono::steady_clock::now() < killed + std::chrono::seconds(15)) {
    any_alive = false;
    for (const auto& [child, start] : children) any_alive = any_alive || still_running(child, start);
    if (any_alive) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE_FALSE(any_alive);
  const double stop_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  CHECK(stop_seconds < 10);
  // They stopped as on Ctrl-C (run file marked interrupted), not killed; the dead sweep's
  // manifest still says running.
  std::vector<RunInfo> before;
  for (const std::string& f : files) {
    before.push_back(read_run(f, LoadWeights::No));
    CHECK(before.back().status == RunStatus::Interrupted);
  }
  for (const ManifestRun& r : read_manifest(manifest_path(dir.string())).runs)
    CHECK(r.status == SweepRunStatus::Running);

  std::string log;
  REQUIRE(sweep("--jobs 2 --set train.epochs=8 --output " + shell_quote(out.string()), &log) == 0);
  INFO(log);
  CHECK_THAT(log, Catch::Contains("2 run(s), 0 complete, 2 to run"));
  CHECK_THAT(log, Catch::Contains("[1/2] resume") && Catch::Contains("[2/2] resume"));
  require_complete_sweep(dir, 8);
  // Resumed, not restarted: the epochs run before the kill are still the first rows.
  for (std::size_t r = 0; r < files.size(); ++r) {
    const RunInfo after = read_run(files[r], LoadWeights::No);
    for (const FoldInfo& f : before[r].folds)
      for (std::size_t e = 0; e < f.history.size(); ++e)
        CHECK(after.fold(f.index)->history[e].seconds == f.history[e].seconds);
  }
}

TEST_CASE("a sweep waits while runs of a killed sweep hold its folder, and refuses a live sweep",
          "[e2e][sweep][kill9]") {
  const fs::path out = scratch_dir("sweep_lock_wait");
  const fs::path dir = out / "tiny_sweep";
  fs::create_directories(dir);
  // Hold the folder's lock here, as the orphaned runs of a killed sweep would, with the pid of
  // a sweep that has ended (a process started and reaped here).
  const int dead = spawn_process({"true"}, (out / "true.log").string());
  REQUIRE(dead > 0);
  REQUIRE(wait_process(dead) == 0);
  const std::string lock = (dir / ".sweep.lock").string();
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const std::string dead_text = std::to_string(dead);
  REQUIRE(::pwrite(fd, dead_text.data(), dead_text.size(), 0) == static_cast<ssize_t>(dead_text.size()));

  const int pid = spawn_process({chestlab_exe(), "sweep", sweep_toml(), "--set", "train.epochs=1", "--output",
                                 out.string()},
                                (out / "waiting.log").string());
  REQUIRE(pid > 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         read_text(out / "waiting.log").find("waiting for the runs") == std::string::npos)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    INFO(read_text(out / "waiting.log"));
    REQUIRE_THAT(read_text(out / "waiting.log"),
                 Catch::Contains("waiting for the runs of a `chestlab sweep` that ended (pid " + dead_text + ")"));
    // Nothing is started while the lock is held.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK_FALSE(fs::exists(manifest_path(dir.string())));
  }
  ::close(fd);  // the last orphan has stopped
  const int code = wait_process(pid);
  INFO(read_text(out / "waiting.log"));
  CHECK(code == 0);
  require_complete_sweep(dir, 1);

  // A live holder (this test's process) is refused at once, naming it.
  fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const std::string me = std::to_string(getpid());
  REQUIRE(::ftruncate(fd, 0) == 0);
  REQUIRE(::pwrite(fd, me.data(), me.size(), 0) == static_cast<ssize_t>(me.size()));
  std::string log;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(sweep("--set train.epochs=1 --output " + shell_quote(out.string()), &log) == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  CHECK_THAT(log, Catch::Contains("another `chestlab sweep` (pid " + me + ") is working on"));
  ::close(fd);
}

TEST_CASE("sweep --retry-failed runs a failed run again, keeping its finished folds", "[e2e][sweep]") {
  const fs::path out = scratch_dir("sweep_retry_failed");
  const fs::path dir = out / "tiny_sweep";
  // The second point's loss goes NaN in the fold that trains on sample synth-0
  // (tests/plugins/nan_loss.cpp) unless CHESTLAB_TEST_NAN_LOSS_OFF is set.
  const std::string toml = std::regex_replace(read_text(sweep_toml()), std::regex("\ngrid = [^\n]*"),
                                              "\ngrid = { \"loss.plugin\" = [\"bce_jaccard\", \"nan_when_synth0\"] }");
  REQUIRE(toml.find("nan_when_synth0") != std::string::npos);
  const fs::path exp = out / "retry.toml";
  std::ofstream(exp) << toml;
  const std::string common = " --output " + shell_quote(out.string()) + " --plugin-path " +
                             shell_quote((fs::path(test_plugin_dir()) / "nan_loss").string());
  const auto sweep_exp = [&](const std::string& args, std::string* log, const std::string& env = "") {
    return run_command(env + shell_quote(chestlab_exe()) + " sweep " + shell_quote(exp.string()) + common + " " + args,
                       log);
  };

  std::string log;
  CHECK(sweep_exp("", &log) == 1);
  INFO(log);
  CHECK_THAT(log, Catch::Contains(" failed (exit 1)"));
  const SweepManifest m = read_manifest(manifest_path(dir.string()));
  REQUIRE(m.runs.size() == 2);
  const std::size_t bad = m.runs[0].status == SweepRunStatus::Failed ? 0 : 1;
  REQUIRE(m.runs[bad].status == SweepRunStatus::Failed);
  REQUIRE(m.runs[1 - bad].status == SweepRunStatus::Complete);
  const fs::path bad_file = dir / m.runs[bad].file;
  const RunInfo failed = read_run(bad_file.string(), LoadWeights::No);
  CHECK(failed.status == RunStatus::Failed);
  REQUIRE(failed.folds.size() == 2);
  const FoldInfo* kept = nullptr;
  for (const FoldInfo& f : failed.folds)
    if (f.status == FoldStatus::Complete) kept = &f;
  REQUIRE(kept != nullptr);  // the fold without synth-0 in training finished
  const auto good_mtime = fs::last_write_time(dir / m.runs[1 - bad].file);

  // Without --retry-failed the failed run is reported and left alone, even when it would pass now.
  const auto bad_mtime = fs::last_write_time(bad_file);
  CHECK(sweep_exp("", &log, "CHESTLAB_TEST_NAN_LOSS_OFF=1 ") == 1);
  CHECK_THAT(log, Catch::Contains("2 run(s), 1 complete, 0 to run, 1 failed (--retry-failed runs them again)"));
  CHECK(log.find(" resume ") == std::string::npos);
  CHECK(fs::last_write_time(bad_file) == bad_mtime);

  // With it, the failed run is resumed: its failed fold trained again, its finished fold kept.
  CHECK(sweep_exp("--retry-failed", &log, "CHESTLAB_TEST_NAN_LOSS_OFF=1 ") == 0);
  CHECK_THAT(log, Catch::Contains("2 run(s), 1 complete, 1 to run"));
  CHECK_THAT(log, Catch::Contains("[" + std::to_string(bad + 1) + "/2] resume " + m.runs[bad].id));
  CHECK(log.find("[" + std::to_string(2 - bad) + "/2]") == std::string::npos);  // the complete run is not rerun
  CHECK(fs::last_write_time(dir / m.runs[1 - bad].file) == good_mtime);
  const RunInfo retried = read_run(bad_file.string(), LoadWeights::No);
  CHECK(retried.status == RunStatus::Complete);
  for (const FoldInfo& f : retried.folds) {
    CHECK(f.status == FoldStatus::Complete);
    CHECK(f.history.size() == 3);
  }
  REQUIRE(retried.fold(kept->index) != nullptr);
  for (std::size_t e = 0; e < kept->history.size(); ++e)
    CHECK(retried.fold(kept->index)->history[e].seconds == kept->history[e].seconds);
  for (const ManifestRun& r : read_manifest(manifest_path(dir.string())).runs)
    CHECK(r.status == SweepRunStatus::Complete);
}

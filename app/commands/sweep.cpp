// chestlab sweep EXP.toml [--jobs N] [--dry-run] [--output DIR] [--set k=v]...
//                         [--slurm ...] [--task N] [--merge]
//
// Expands the experiment's [sweep] table (core: sweep.h), keeps a manifest of its runs
// (<output>/<experiment>/sweep.toml) and runs what is not complete: locally as child
// `chestlab run` processes (--jobs N at once, the cores divided between them), or on Slurm as
// an array of (run, fold) units whose per-fold files are merged into the run files afterwards.
#include <boost/program_options.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "chestlab/host/experiment.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/engine/sweep.h"
#include "cli.h"
#include "command.h"
#include "run_output.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab sweep EXP.toml [--jobs N] [--dry-run] [--output DIR] [--set section.key=value]...\n"
    "                               [--tensorboard]\n"
    "       chestlab sweep EXP.toml --slurm [--partition P] [--time T] [--gpus-per-task G]\n"
    "                               [--cpus-per-task C] [--dir D] [--submit]\n"
    "       chestlab sweep EXP.toml --task N      (one (run, fold) unit of the Slurm array)\n"
    "       chestlab sweep EXP.toml --merge       (merge finished Slurm units into run files)\n\n"
    "Expands the experiment's [sweep] table (grid, variants, random search) into runs whose ids\n"
    "derive from their resolved configuration, writes <output>/<experiment>/sweep.toml listing\n"
    "every run and its status, and runs what is not complete: complete runs are skipped,\n"
    "interrupted ones resumed. Every run uses the same folds. Ctrl-C or SIGTERM stops all runs\n"
    "after their current batch (exit 130); run the same command again to continue.\n"
    "Exit: 0 all complete, 1 a run failed, 2 configuration error, 3 data error, 130 interrupted.\n\n";

struct Args {
  std::string experiment;
  std::vector<std::string> overrides;
  std::vector<std::string> plugin_dirs;
  int jobs = 1;
  bool dry_run = false, retry_failed = false, quiet = false;
  bool tensorboard = false;  // --tensorboard: passed on to every run (not part of run ids)
};

std::string quoted_toml(const std::string& s) { return to_toml(ParamValue{s}); }

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=+-,") ==
                           std::string::npos)
    return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("chestlab") : p.string();
}

// ---- fold assignment ----------------------------------------------------------------------

// Points that differ in their dataset could see different samples, hence different folds:
// build each distinct dataset once and require the same validation samples in every fold.
void check_same_folds(const SweepPlan& plan, const std::shared_ptr<PluginRegistry>& registry) {
  std::map<std::string, std::size_t> first_of;  // dataset text -> point
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const ExperimentConfig& c = plan.points[i].config;
    first_of.emplace(c.dataset.plugin + "\n" + to_toml(ParamValue{c.on_error}) + "\n" + [&] {
      std::string t;
      for (const auto& [k, v] : c.dataset.params.values()) t += k + "=" + to_toml(v) + "\n";
      return t;
    }(), i);
  }
  if (first_of.size() < 2) return;
  std::vector<std::vector<std::string>> reference;
  std::string reference_label;
  for (const auto& [text, i] : first_of) {
    const SweepPoint& p = plan.points[i];
    Experiment exp(p.config, registry);
    std::vector<std::vector<std::string>> val;
    for (const FoldPlan& f : exp.plans()) {
      std::vector<std::string> ids;
      for (auto s : f.val) ids.push_back(exp.samples()[s].id);
      val.push_back(std::move(ids));
    }
    const std::string label = p.run_id + " (" + fmt::format("{}", fmt::join(p.overrides(), " ")) + ")";
    if (reference_label.empty()) {
      reference = std::move(val);
      reference_label = label;
    } else if (val != reference) {
      throw ConfigError(fmt::format(
          "sweep: runs {} and {} would not use the same folds: the swept dataset parameters change which samples "
          "the dataset has. Every run of a sweep must see the same samples in fold k; sweep only dataset "
          "parameters that keep the sample list (e.g. image_size), or sweep a copy of the file.",
          reference_label, label));
    }
  }
}

// ---- lock and manifest ----------------------------------------------------------------------

// One `chestlab sweep` (local run or merge) per sweep folder at a time. The runs a local
// sweep starts hold the lock too (spawn_run), so after a sweep was killed the folder stays
// locked until its last run has stopped: then the pid in the file is dead and we wait for
// those runs (they stop after their current batch) rather than refuse.
class SweepLock {
 public:
  explicit SweepLock(const std::string& dir) {
    fs::create_directories(dir);
    path_ = (fs::path(dir) / ".sweep.lock").string();
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(path_ + ": cannot open the sweep lock");
    bool told = false;
    const auto deadline = std::chrono::steady_clock::now() + kOrphanWait;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
      const std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "?";
      const long holder_pid = std::atol(holder.c_str());
      const bool holder_gone = holder_pid > 0 && ::kill(static_cast<pid_t>(holder_pid), 0) != 0 && errno == ESRCH;
      if (!holder_gone || std::chrono::steady_clock::now() > deadline) {
        ::close(fd_);
        if (holder_gone)
          throw std::runtime_error(fmt::format(
              "{} is still locked by runs that a killed `chestlab sweep` (pid {}) started, {} s after they were told "
              "to stop; find them with `fuser {}`, stop them or wait, then run the sweep again",
              dir, holder, std::chrono::duration_cast<std::chrono::seconds>(kOrphanWait).count(), path_));
        throw std::runtime_error(fmt::format(
            "another `chestlab sweep` (pid {}) is working on {}; wait for it or stop it", holder, dir));
      }
      if (!told)
        std::cout << fmt::format("waiting for the runs of a `chestlab sweep` that ended (pid {}) to stop after "
                                 "their current batch...\n",
                                 holder)
                  << std::flush;
      told = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    const std::string me = std::to_string(getpid());
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) { /* informative only */ }
  }
  ~SweepLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

 private:
  static constexpr std::chrono::minutes kOrphanWait{10};
  std::string path_;
  int fd_ = -1;
};

void refresh_statuses(SweepManifest& m, const std::string& dir, const std::set<std::string>& live = {}) {
  for (ManifestRun& r : m.runs) {
    r.status = status_from_file((fs::path(dir) / r.file).string(), live.count(r.id) > 0);
    if (r.status == SweepRunStatus::Pending && fs::exists(fs::path(dir) / "units" / r.id))
      r.status = SweepRunStatus::Interrupted;  // some Slurm units ran, not merged yet
  }
}

std::string point_text(const SweepPoint& p) {
  std::string text = p.label;
  for (const SweepSetting& s : p.settings) text += (text.empty() ? "" : " ") + s.override_text();
  return text.empty() ? "(the experiment as written)" : text;
}

void print_runs(const SweepPlan& plan, const SweepManifest& m, const std::string& dir) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"#", "run", "label"};
  for (const std::string& p : plan.swept) header.push_back(p);
  header.push_back("status");
  header.push_back("file");
  rows.push_back(header);
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const SweepPoint& p = plan.points[i];
    std::vector<std::string> row{std::to_string(i), p.run_id, p.label.empty() ? "-" : p.label};
    for (const std::string& path : plan.swept) {
      const std::string v = p.value_of(path);
      row.push_back(v.empty() ? "-" : v);
    }
    row.push_back(to_string(m.runs[i].status));
    row.push_back((fs::path(dir) / m.runs[i].file).string());
    rows.push_back(row);
  }
  std::vector<std::size_t> widths(header.size(), 0);
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) widths[c] = std::max(widths[c], r[c].size());
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t c = 0; c < r.size(); ++c)
      line += (c ? "  " : "") + r[c] + (c + 1 < r.size() ? std::string(widths[c] - r[c].size(), ' ') : "");
    std::cout << line << "\n";
  }
}

// ---- local runs ------------------------------------------------------------------------------

std::atomic<int> g_stop{0};
extern "C" void on_stop(int) { g_stop.store(1); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

struct SpawnError {
  int error = 0;  // errno of the failed spawn, 0 when it started
};

// A child `chestlab run`, in its own process group (a Ctrl-C reaches only this process, which
// passes one SIGTERM on), its output appended to `log`, started with posix_spawn: this
// process has LibTorch's and OpenMP's threads, and after a fork only async-signal-safe calls
// are allowed, so argv, the environment and the file actions are all prepared here and the
// child does nothing but exec. It is given our pid ($CHESTLAB_PARENT_PID, host/runtime.h) and
// stops after its batch if we die, even by kill -9. It also gets a copy of the sweep lock's
// descriptor (`lock_fd`; the run never uses it): a sweep folder stays locked until the last
// run started from it has stopped, so a sweep started again after a kill -9 waits for the
// orphans instead of resuming their run files under them.
pid_t spawn_run(const std::vector<std::string>& argv, const std::string& log, int threads, int lock_fd,
                SpawnError& failure) {
  fs::create_directories(fs::path(log).parent_path());
  std::vector<std::string> env_text;
  const std::string omp = "OMP_NUM_THREADS=", parent = std::string(kParentPidVariable) + "=";
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    if (entry.rfind(omp, 0) != 0 && entry.rfind(parent, 0) != 0) env_text.push_back(entry);
  }
  env_text.push_back(omp + std::to_string(threads));
  env_text.push_back(parent + std::to_string(getpid()));
  std::vector<char*> args, env;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env_text) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  // A run never reads the terminal (reading it from another process group would stop it).
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  // dup2 onto another number clears close-on-exec (onto the same number it need not).
  if (lock_fd >= 0) posix_spawn_file_actions_adddup2(&actions, lock_fd, lock_fd == 3 ? 4 : 3);
  // Our stop handlers are replaced by exec anyway; SIG_IGN (a sweep started under nohup or
  // from a script with `&`) would not be, and the run must stop on SIGTERM/SIGINT.
  sigset_t defaults, none;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  failure.error = posix_spawn(&pid, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return failure.error == 0 ? pid : -1;
}

// The child's own error message (from its last "error:" or "data error:" line to the end of
// its log, at most 20 lines, indented), so that the reason shows where the sweep is watched.
std::string last_error(const std::string& log) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 16384);
  in.seekg(from);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < tail.size()) {
    const std::size_t end = std::min(tail.find('\n', start), tail.size());
    lines.push_back(tail.substr(start, end - start));
    start = end + 1;
  }
  std::size_t first = lines.size();
  for (std::size_t k = lines.size(); k-- > 0;)
    if (lines[k].rfind("error:", 0) == 0 || lines[k].rfind("data error:", 0) == 0) {
      first = k;
      break;
    }
  std::string out;
  for (std::size_t k = first; k < lines.size() && k < first + 20; ++k)
    if (!lines[k].empty()) out += "    " + lines[k] + "\n";
  return out;
}

std::string summary_text(const std::string& file) {
  try {
    RunInfo info = read_run(file, LoadWeights::No);
    for (const SummaryRow& s : compute_summary(info.folds))
      if (s.metric == info.meta.monitor) return fmt::format("{} {:.4f} ± {:.4f}", s.metric, s.mean, s.std);
  } catch (const std::exception&) {
  }
  return "";
}

int run_local(const Args& args, const SweepPlan& plan, const std::string& dir) {
  SweepLock lock(dir);
  for (const SweepPoint& p : plan.points) merge_units(dir, p);  // Slurm units finished meanwhile
  SweepManifest manifest = make_manifest(plan, args.experiment);
  refresh_statuses(manifest, dir);
  const std::string mpath = manifest_path(dir);
  write_manifest(manifest, mpath);

  std::vector<std::size_t> queue;
  int failed_before = 0;
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const SweepRunStatus s = manifest.runs[i].status;
    if (s == SweepRunStatus::Complete) continue;
    if (s == SweepRunStatus::Failed && !args.retry_failed) {
      ++failed_before;
      continue;
    }
    queue.push_back(i);
  }
  const std::size_t total = plan.points.size();
  std::cout << fmt::format("sweep {}: {} run(s), {} complete, {} to run{}; manifest {}\n", manifest.experiment, total,
                           total - queue.size() - static_cast<std::size_t>(failed_before), queue.size(),
                           failed_before ? fmt::format(", {} failed (--retry-failed runs them again)", failed_before)
                                         : "",
                           mpath);
  if (queue.empty()) return failed_before ? kExitFailure : kExitOk;

  const int jobs = std::max(1, std::min<int>(args.jobs, static_cast<int>(queue.size())));
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, cores / jobs);
  std::cout << fmt::format("{} job(s) at once, {} LibTorch thread(s) each; logs in {}\n", jobs, threads,
                           (fs::path(dir) / "logs").string());
  install_stop_handlers();
  const std::string exe = self_exe();
  struct Running {
    std::size_t point;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Running> running;
  std::size_t next = 0;
  bool stopping = false, config_error = false, data_error = false, spawn_failed = false;
  int failed = failed_before;
  auto live_ids = [&] {
    std::set<std::string> ids;
    for (const auto& [pid, r] : running) ids.insert(plan.points[r.point].run_id);
    return ids;
  };
  while (next < queue.size() || !running.empty()) {
    if (g_stop.load() && !stopping) {
      stopping = true;
      std::cout << "stopping: every run stops after its current batch (run the same command again to continue)\n";
      for (const auto& [pid, r] : running) kill(pid, SIGTERM);
    }
    while (!stopping && next < queue.size() && static_cast<int>(running.size()) < jobs) {
      const std::size_t i = queue[next++];
      const SweepPoint& p = plan.points[i];
      const std::string file = run_file_path(dir, p.run_id);
      std::vector<std::string> argv{exe, "run"};
      if (fs::exists(file)) {
        argv.insert(argv.end(), {"--resume", file});
      } else {
        argv.push_back(args.experiment);
        for (const std::string& o : args.overrides) argv.insert(argv.end(), {"--set", o});
        for (const std::string& o : p.overrides()) argv.insert(argv.end(), {"--set", o});
        argv.insert(argv.end(), {"--run-id", p.run_id});
      }
      for (const std::string& d : args.plugin_dirs) argv.insert(argv.end(), {"--plugin-path", d});
      if (args.tensorboard) argv.push_back("--tensorboard");
      argv.push_back("--quiet");
      const std::string log = (fs::path(dir) / "logs" / (p.run_id + ".log")).string();
      SpawnError failure;
      const pid_t pid = spawn_run(argv, log, threads, lock.fd(), failure);
      if (pid < 0) {
        // The runs already going stop after their batch; nothing else is started.
        std::cerr << fmt::format("error: cannot start `{} run` for {} (output to {}): {}\n", exe, p.run_id, log,
                                 std::strerror(failure.error));
        spawn_failed = true;
        g_stop.store(1);
        break;
      }
      running[pid] = {i, std::chrono::steady_clock::now()};
      std::cout << fmt::format("[{}/{}] {} {}: {}\n", i + 1, total, fs::exists(file) ? "resume" : "start", p.run_id,
                               point_text(p))
                << std::flush;
      manifest.runs[i].status = SweepRunStatus::Running;
      write_manifest(manifest, mpath);
    }
    int wstatus = 0;
    const pid_t done = waitpid(-1, &wstatus, WNOHANG);
    if (done <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto it = running.find(done);
    if (it == running.end()) continue;
    const std::size_t i = it->second.point;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    running.erase(it);
    const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    const SweepPoint& p = plan.points[i];
    const std::string file = run_file_path(dir, p.run_id);
    manifest.runs[i].status = status_from_file(file);
    if (code == kExitUsage) config_error = true;
    if (code == kExitData) data_error = true;
    // A run that ended on an error leaves its file "running" (read as interrupted, so that the
    // next sweep resumes it); for this sweep it failed, and the sweep's exit code says so.
    const bool errored = code != 0 && code != kExitInterrupted;
    if (errored && manifest.runs[i].status != SweepRunStatus::Complete) manifest.runs[i].status = SweepRunStatus::Failed;
    if (manifest.runs[i].status == SweepRunStatus::Failed) ++failed;
    const std::string log = (fs::path(dir) / "logs" / (p.run_id + ".log")).string();
    std::cout << fmt::format("[{}/{}] {} {} (exit {}) after {:.0f} s  {}{}\n", i + 1, total, p.run_id,
                             to_string(manifest.runs[i].status), code, seconds, summary_text(file),
                             errored ? "  see " + log : "")
              << (errored ? last_error(log) : std::string()) << std::flush;
    refresh_statuses(manifest, dir, live_ids());
    write_manifest(manifest, mpath);
  }
  refresh_statuses(manifest, dir);
  write_manifest(manifest, mpath);

  // The sweep at a glance: the monitor metric, best first.
  try {
    SweepResults results = load_sweep_results(dir);
    CompareOptions options;
    options.metrics = {results.runs.front().meta.monitor};
    options.sort_by = results.runs.front().meta.monitor;
    options.param_columns = results.param_columns;
    options.params = results.params;
    std::cout << "\n" << render_compare(build_compare_table(results.runs, options), CompareFormat::Table);
  } catch (const std::exception&) {
  }
  if (spawn_failed) return kExitFailure;
  if (stopping) {
    std::cout << "\ninterrupted: run the same command again to continue\n";
    return kExitInterrupted;
  }
  if (config_error) return kExitUsage;
  if (data_error) return kExitData;
  return failed ? kExitFailure : kExitOk;
}

// ---- Slurm --------------------------------------------------------------------------------

struct SlurmArgs {
  std::string partition, time, dir;
  int gpus_per_task = 0, cpus_per_task = 0;
  bool submit = false;
};

// The arguments every array task (and the merge job) repeats after `chestlab sweep EXP`.
std::string common_args(const Args& args) {
  std::string out;
  for (const std::string& o : args.overrides) out += " --set " + shell_quote(o);
  for (const std::string& d : args.plugin_dirs)
    out += " --plugin-path " + shell_quote(fs::absolute(d).lexically_normal().string());
  if (args.tensorboard) out += " --tensorboard";
  return out;
}

void write_script(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error(path + ": cannot write");
  fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
}

std::string run_shell(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    status = -1;
    return out;
  }
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
  const int raw = pclose(pipe);
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

int write_slurm(const Args& args, const SlurmArgs& slurm, const SweepPlan& plan, const std::string& dir) {
  SweepLock lock(dir);
  for (const SweepPoint& p : plan.points) merge_units(dir, p);
  SweepManifest manifest = make_manifest(plan, args.experiment);
  refresh_statuses(manifest, dir);
  write_manifest(manifest, manifest_path(dir));

  const std::vector<SweepUnit> units = sweep_units(plan);
  std::vector<std::size_t> todo;  // array indices of units not done yet
  for (std::size_t u = 0; u < units.size(); ++u)
    if (manifest.runs[units[u].point].status != SweepRunStatus::Complete) todo.push_back(u);
  if (todo.empty()) {
    std::cout << "every run of the sweep is complete; nothing to submit\n";
    return kExitOk;
  }
  const fs::path sdir = fs::absolute(slurm.dir.empty() ? fs::path(dir) / "slurm" : fs::path(slurm.dir));
  fs::create_directories(sdir / "logs");
  std::string array;
  for (std::size_t i = 0; i < todo.size(); ++i) {
    std::size_t j = i;
    while (j + 1 < todo.size() && todo[j + 1] == todo[j] + 1) ++j;
    array += (array.empty() ? "" : ",") + (i == j ? std::to_string(todo[i]) : fmt::format("{}-{}", todo[i], todo[j]));
    i = j;
  }
  const std::string exe = self_exe();
  const std::string experiment = fs::absolute(args.experiment).lexically_normal().string();
  const std::string cwd = fs::current_path().string();
  std::string head = "#!/bin/bash\n";
  head += fmt::format("#SBATCH --job-name=chestlab-{}\n", manifest.experiment);
  if (!slurm.partition.empty()) head += "#SBATCH --partition=" + slurm.partition + "\n";
  if (!slurm.time.empty()) head += "#SBATCH --time=" + slurm.time + "\n";
  std::string sweep_script = head;
  sweep_script += fmt::format("#SBATCH --array={}\n#SBATCH --ntasks=1\n", array);
  if (slurm.gpus_per_task > 0) sweep_script += fmt::format("#SBATCH --gpus-per-task={}\n", slurm.gpus_per_task);
  if (slurm.cpus_per_task > 0) sweep_script += fmt::format("#SBATCH --cpus-per-task={}\n", slurm.cpus_per_task);
  sweep_script += fmt::format("#SBATCH --output={}/logs/%A_%a.out\n", sdir.string());
  sweep_script += fmt::format(
      "# Written by `chestlab sweep --slurm`: one array task per (run, fold) unit, {} unit(s) of {} run(s).\n"
      "# Each task writes its own file under {}/units/; `chestlab sweep ... --merge` (merge.sbatch)\n"
      "# merges finished units into the run files.\n"
      "set -euo pipefail\ncd {}\nexec {} sweep {} --task \"$SLURM_ARRAY_TASK_ID\"{}\n",
      units.size(), plan.points.size(), fs::absolute(dir).string(), shell_quote(cwd), shell_quote(exe),
      shell_quote(experiment), common_args(args));
  std::string merge_script = head;
  merge_script += fmt::format("#SBATCH --ntasks=1\n#SBATCH --output={}/logs/merge_%j.out\n", sdir.string());
  merge_script += fmt::format("set -euo pipefail\ncd {}\nexec {} sweep {} --merge{}\n", shell_quote(cwd),
                              shell_quote(exe), shell_quote(experiment), common_args(args));
  const std::string sweep_path = (sdir / "sweep.sbatch").string(), merge_path = (sdir / "merge.sbatch").string();
  write_script(sweep_path, sweep_script);
  write_script(merge_path, merge_script);
  std::cout << fmt::format("wrote {} ({} array task(s): --array={}) and {}\n", sweep_path, todo.size(), array,
                           merge_path);
  if (!slurm.submit) {
    std::cout << fmt::format(
        "submit with:\n  job=$(sbatch --parsable {}) && sbatch --dependency=afterany:$job {}\n"
        "or merge by hand when the tasks are done: chestlab sweep {} --merge\n",
        sweep_path, merge_path, args.experiment);
    return kExitOk;
  }
  int status = 0;
  const std::string job = run_shell("sbatch --parsable " + shell_quote(sweep_path), status);
  if (status != 0 || job.empty()) {
    std::cerr << "error: sbatch failed: " << job << "\n";
    return kExitFailure;
  }
  const std::string merge_job = run_shell(
      fmt::format("sbatch --parsable --dependency=afterany:{} {}", job.substr(0, job.find(';')), shell_quote(merge_path)),
      status);
  if (status != 0) {
    std::cerr << "error: sbatch (merge job) failed: " << merge_job << "\n";
    return kExitFailure;
  }
  std::cout << fmt::format("submitted array job {} and merge job {}\n", job, merge_job);
  return kExitOk;
}

// One (run, fold) unit, in this process: the fold trained into its own unit file.
int run_task(const Args& args, const std::shared_ptr<PluginRegistry>& registry, const SweepPlan& plan,
             const std::string& dir, long task) {
  const std::vector<SweepUnit> units = sweep_units(plan);
  if (task < 0 || static_cast<std::size_t>(task) >= units.size())
    throw ConfigError(fmt::format("--task {}: the sweep has {} unit(s), numbered 0 to {}", task, units.size(),
                                  units.size() - 1));
  std::error_code ec;
  if (fs::exists(manifest_path(dir), ec)) {
    const SweepManifest m = read_manifest(manifest_path(dir));
    bool same = m.runs.size() == plan.points.size();
    for (std::size_t i = 0; same && i < m.runs.size(); ++i) same = m.runs[i].id == plan.points[i].run_id;
    if (!same)
      throw ConfigError(fmt::format("{}: the sweep's runs differ from its manifest {}: the experiment file (or --set) "
                                    "changed after the Slurm script was written; write it again with --slurm",
                                    args.experiment, manifest_path(dir)));
  }
  const SweepUnit unit = units[static_cast<std::size_t>(task)];
  const SweepPoint& p = plan.points[unit.point];
  const std::string run_file = run_file_path(dir, p.run_id);
  if (fs::exists(run_file, ec)) {
    RunInfo info = read_run(run_file, LoadWeights::No);
    if (const FoldInfo* f = info.fold(unit.fold); f && is_finished(f->status)) {
      std::cout << fmt::format("unit {}: run {} fold {} is already in {}\n", task, p.run_id, unit.fold, run_file);
      return kExitOk;
    }
  }
  const std::string unit_file = unit_file_path(dir, p.run_id, unit.fold);
  if (const char* cpus = std::getenv("SLURM_CPUS_PER_TASK"); cpus && !std::getenv("OMP_NUM_THREADS"))
    setenv("OMP_NUM_THREADS", cpus, 1);
  RunRequest request;
  request.registry = registry;
  if (fs::exists(unit_file, ec)) {
    if (read_run(unit_file, LoadWeights::No).status == RunStatus::Complete) {
      std::cout << fmt::format("unit {}: {} is complete\n", task, unit_file);
      return kExitOk;
    }
    request.resume = unit_file;
    request.tensorboard = args.tensorboard;
  } else {
    request.experiment_file = args.experiment;
    request.overrides = args.overrides;
    for (const std::string& o : p.overrides()) request.overrides.push_back(o);
    request.overrides.push_back(fmt::format("cv.run_folds=[{}]", unit.fold));
    if (args.tensorboard) request.overrides.push_back("train.tensorboard=true");
    request.run_id = p.run_id;
    request.run_path = unit_file;
  }
  std::cout << fmt::format("unit {}: run {} ({}) fold {} -> {}\n", task, p.run_id, point_text(p), unit.fold, unit_file)
            << std::flush;
  return run_experiment_on_terminal(request, !args.quiet).exit_code;
}

int run_merge(const Args& args, const SweepPlan& plan, const std::string& dir) {
  SweepLock lock(dir);
  int merged = 0;
  for (const SweepPoint& p : plan.points) merged += merge_units(dir, p).folds_merged;
  SweepManifest manifest = make_manifest(plan, args.experiment);
  refresh_statuses(manifest, dir);
  write_manifest(manifest, manifest_path(dir));
  std::cout << fmt::format("merged {} fold unit(s)\n", merged);
  print_runs(plan, manifest, dir);
  bool all = true, failed = false;
  for (const ManifestRun& r : manifest.runs) {
    all = all && r.status == SweepRunStatus::Complete;
    failed = failed || r.status == SweepRunStatus::Failed;
  }
  if (!all) std::cout << "\nnot every run is complete yet\n";
  return failed || !all ? kExitFailure : kExitOk;
}

int run_sweep(const std::vector<std::string>& argv) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("set", po::value<std::vector<std::string>>()->composing(), "override a value in every run: section.key=value")
      ("jobs,j", po::value<int>()->default_value(1), "runs at once on this machine (the cores are divided)")
      ("dry-run,n", "list the runs and their status; run nothing")
      ("output", po::value<std::string>(), "results folder (overrides experiment.output; not part of run ids)")
      ("results", po::value<std::string>(), "the old name of --output")
      ("retry-failed", "run failed runs again (resuming them)")
      ("plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins (repeatable)")
      ("tensorboard", "every run also writes TensorBoard event files (train.tensorboard; not part of run ids)")
      ("quiet,q", "less output (--task)")
      ("slurm", "write an sbatch array script: one task per (run, fold) unit")
      ("partition", po::value<std::string>(), "Slurm partition (--slurm)")
      ("time", po::value<std::string>(), "Slurm time limit per task, e.g. 2:00:00 (--slurm)")
      ("gpus-per-task", po::value<int>(), "GPUs per array task (--slurm)")
      ("cpus-per-task", po::value<int>(), "CPUs per array task; also its LibTorch threads (--slurm)")
      ("dir", po::value<std::string>(), "where the scripts and logs go (--slurm; default <output>/<experiment>/slurm)")
      ("submit", "also submit the scripts with sbatch (--slurm)")
      ("task", po::value<long>(), "run one (run, fold) unit of the array (what each Slurm task runs)")
      ("merge", "merge finished units into run files, refresh the manifest");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("experiment", 1);
  po::variables_map vm;
  if (auto done = parse_command_line(argv, kUsage, options, hidden, positional, vm)) return *done;
  Args args;
  try {
    if (!vm.count("experiment")) throw po::error("give an experiment file with a [sweep] table");
    args.experiment = vm["experiment"].as<std::string>();
    if (vm.count("set")) args.overrides = vm["set"].as<std::vector<std::string>>();
    if (vm.count("results") && vm.count("output")) throw po::error("--results is the old name of --output: give one");
    if (vm.count("results")) std::cerr << "note: --results is now --output (the old name still works)\n";
    for (const char* name : {"output", "results"})
      if (vm.count(name)) args.overrides.push_back("experiment.output=" + quoted_toml(vm[name].as<std::string>()));
    if (vm.count("plugin-path")) args.plugin_dirs = vm["plugin-path"].as<std::vector<std::string>>();
    args.tensorboard = vm.count("tensorboard") > 0;
    args.jobs = vm["jobs"].as<int>();
    if (args.jobs < 1) throw po::error("--jobs takes a number >= 1");
    args.dry_run = vm.count("dry-run") > 0;
    args.retry_failed = vm.count("retry-failed") > 0;
    args.quiet = vm.count("quiet") > 0;
    const int modes = static_cast<int>(vm.count("slurm") + vm.count("task") + vm.count("merge") + vm.count("dry-run"));
    if (modes > 1) throw po::error("--slurm, --task, --merge and --dry-run exclude each other");
    for (const char* o : {"partition", "time", "gpus-per-task", "cpus-per-task", "dir", "submit"})
      if (vm.count(o) && !vm.count("slurm")) throw po::error(std::string("--") + o + " goes with --slurm");
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n\n" << kUsage << options;
    return kExitUsage;
  }

  auto registry = discover_plugins(vm);
  const SweepPlan plan = expand_sweep(args.experiment, args.overrides, *registry);
  if (!plan.has_sweep)
    std::cout << "note: " << args.experiment << " has no [sweep] table: one run, the experiment as written\n";
  if (plan.duplicates_skipped)
    std::cout << fmt::format("note: {} random sample(s) repeated an earlier point and were dropped\n",
                             plan.duplicates_skipped);
  const std::string dir = sweep_dir(plan.points.front().config);

  if (vm.count("task")) return run_task(args, registry, plan, dir, vm["task"].as<long>());
  check_same_folds(plan, registry);
  if (vm.count("merge")) return run_merge(args, plan, dir);
  if (args.dry_run) {
    SweepManifest manifest = make_manifest(plan, args.experiment);
    refresh_statuses(manifest, dir);
    const auto units = sweep_units(plan);
    std::cout << fmt::format("sweep {}: {} run(s) x {} fold(s) = {} (run, fold) unit(s); folds {}\n",
                             manifest.experiment, plan.points.size(), manifest.folds.size(), units.size(),
                             fmt::join(manifest.folds, ","));
    print_runs(plan, manifest, dir);
    return kExitOk;
  }
  if (vm.count("slurm")) {
    SlurmArgs slurm;
    if (vm.count("partition")) slurm.partition = vm["partition"].as<std::string>();
    if (vm.count("time")) slurm.time = vm["time"].as<std::string>();
    if (vm.count("gpus-per-task")) slurm.gpus_per_task = vm["gpus-per-task"].as<int>();
    if (vm.count("cpus-per-task")) slurm.cpus_per_task = vm["cpus-per-task"].as<int>();
    if (vm.count("dir")) slurm.dir = vm["dir"].as<std::string>();
    slurm.submit = vm.count("submit") > 0;
    return write_slurm(args, slurm, plan, dir);
  }
  return run_local(args, plan, dir);
}

const Command reg{"sweep", "run every point of an experiment's [sweep] (locally, resumable, or on Slurm)",
                  &run_sweep};

}  // namespace
}  // namespace chestlab::app

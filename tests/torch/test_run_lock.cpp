// `chestlab run` end to end, one writer per run file: two `run --resume` of one interrupted
// file started together (one resumes, the other is refused at once, naming it), a lock left
// by a kill -9 that does not block; and strings TOML does not take raw (control characters,
// quotes, backslashes, non-ASCII) that run, resume and rerun read back from the run file.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chestlab/engine/file_lock.h"
#include "chestlab/engine/runfile.h"
#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;
using Catch::Matchers::Contains;

namespace {

std::string tiny_toml() { return (source_dir() / "tests" / "data" / "tiny.toml").string(); }

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Files a writer leaves beside the run file: its lock, its temporaries.
std::vector<std::string> leftovers(const fs::path& run_file) {
  std::vector<std::string> out;
  const std::string name = run_file.filename().string();
  for (const auto& e : fs::directory_iterator(run_file.parent_path())) {
    const std::string other = e.path().filename().string();
    if (other != name && other.rfind(name, 0) == 0) out.push_back(other);
  }
  return out;
}

// Starts `chestlab run EXPERIMENT --output DIR` and returns once fold 0 has a completed epoch
// on disk (the run file then exists and is locked); the process is still training.
int start_run_until_first_epoch(const std::string& experiment, const fs::path& out, const fs::path& log) {
  const int pid = spawn_process({chestlab_exe(), "run", experiment, "--set", "train.epochs=8", "--quiet", "--output",
                                 out.string()},
                                log.string());
  REQUIRE(pid > 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  for (;;) {
    INFO(slurp(log));
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    int status = 0;
    REQUIRE(waitpid(pid, &status, WNOHANG) == 0);  // still running
    auto files = run_files(out);
    if (!files.empty()) {
      try {
        RunInfo partial = read_run(files.front().string(), LoadWeights::No);
        if (!partial.folds.empty() && !partial.folds[0].history.empty()) return pid;
      } catch (...) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// An interrupted run file (Ctrl-C after fold 0's first epoch).
fs::path interrupted_run(const std::string& experiment, const fs::path& out) {
  const int pid = start_run_until_first_epoch(experiment, out, out.parent_path() / (out.filename().string() + ".log"));
  kill(pid, SIGINT);
  REQUIRE(wait_process(pid) == 130);
  auto files = run_files(out);
  REQUIRE(files.size() == 1);
  REQUIRE(read_run(files.front().string(), LoadWeights::No).status == RunStatus::Interrupted);
  return files.front();
}

std::string this_host() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace

TEST_CASE("two run --resume of one run file started together: one resumes, the other exits 1 at once naming it",
          "[e2e][runlock]") {
  const fs::path dir = scratch_dir("runlock_two_resumes");
  const fs::path file = interrupted_run(tiny_toml(), dir / "out");

  const fs::path log_a = dir / "a.log", log_b = dir / "b.log";
  const int a = spawn_process({chestlab_exe(), "run", "--resume", file.string(), "--quiet"}, log_a.string());
  const int b = spawn_process({chestlab_exe(), "run", "--resume", file.string(), "--quiet"}, log_b.string());
  REQUIRE(a > 0);
  REQUIRE(b > 0);
  // The first to end must be the refused one, while the other is still training.
  int first = -1, first_status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (first < 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    for (int pid : {a, b}) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        first = pid;
        first_status = status;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int other = first == a ? b : a;
  const std::string refused_log = slurp(first == a ? log_a : log_b);
  INFO("refused: " << refused_log << "\nother: " << slurp(first == a ? log_b : log_a));
  int status = 0;
  CHECK(waitpid(other, &status, WNOHANG) == 0);  // still running when the refusal came
  REQUIRE(WIFEXITED(first_status));
  CHECK(WEXITSTATUS(first_status) == 1);
  CHECK_THAT(refused_log, Contains("error: run file " + file.string() + " is in use by another chestlab process"));
  CHECK_THAT(refused_log, Contains("pid " + std::to_string(other) + " on host " + this_host()));
  CHECK_THAT(refused_log, Contains("run --resume " + file.string()));  // the holder's command line

  REQUIRE(wait_process(other) == 0);
  const RunInfo resumed = read_run(file.string(), LoadWeights::No);
  CHECK(resumed.status == RunStatus::Complete);
  for (const FoldInfo& fold : resumed.folds) {
    REQUIRE(fold.history.size() == 8);
    for (std::size_t e = 0; e < fold.history.size(); ++e) CHECK(fold.history[e].epoch == static_cast<std::int64_t>(e));
  }
  CHECK(leftovers(file).empty());  // no lock file, no temporaries
}

TEST_CASE("a run file whose writer was killed -9 resumes at once: the lock it left does not block",
          "[e2e][runlock]") {
  const fs::path dir = scratch_dir("runlock_killed");
  const int pid = start_run_until_first_epoch(tiny_toml(), dir / "out", dir / "killed.log");
  const fs::path file = run_files(dir / "out").front();
  kill(pid, SIGKILL);
  REQUIRE(wait_process(pid) == 128 + SIGKILL);
  // What a killed writer leaves: the lock file, naming it.
  REQUIRE(fs::exists(file.string() + ".lock"));
  CHECK(FileLock::read_holder(file.string() + ".lock").pid == std::to_string(pid));

  std::string log;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " run --resume " + shell_quote(file.string()) + " --quiet", &log) ==
          0);
  INFO(log);
  CHECK(read_run(file.string(), LoadWeights::No).status == RunStatus::Complete);
  CHECK(leftovers(file).empty());
}

TEST_CASE("control characters, quotes and non-ASCII in an experiment's strings survive run, resume and rerun",
          "[e2e][toml_roundtrip]") {
  const fs::path dir = scratch_dir("runlock_odd_strings");
  // An output folder and a metric name holding what TOML only takes escaped, and what
  // hand-made quoting gets wrong; the file itself says them with TOML escapes.
  const std::string odd_folder = std::string("o \x01\x1f\x7f \"q\" \\ \xc3\xa9\tx");
  const std::string odd_metric = "iou \"q\" \\ \x01 \xc3\xa9";
  std::string text = slurp(tiny_toml());
  const std::string seed_line = "seed = 7\n";
  REQUIRE(text.find(seed_line) != std::string::npos);
  text.replace(text.find(seed_line), seed_line.size(),
               seed_line + "output = \"" + (dir / "o ").string() + "\\u0001\\u001F\\u007F \\\"q\\\" \\\\ \\u00E9\\tx\"\n");
  const std::string metric_line = "plugin = \"mean_iou\"\n";
  REQUIRE(text.find(metric_line) != std::string::npos);
  text.replace(text.find(metric_line), metric_line.size(),
               metric_line + "name = \"iou \\\"q\\\" \\\\ \\u0001 \\u00E9\"\n");
  const fs::path experiment = dir / "odd.toml";
  std::ofstream(experiment) << text;

  // The run's own --output is left out: the file's output must be used as written.
  const int pid = spawn_process({chestlab_exe(), "run", experiment.string(), "--set", "train.epochs=8", "--quiet"},
                                (dir / "run.log").string());
  REQUIRE(pid > 0);
  const fs::path out = dir / odd_folder;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  for (bool ready = false; !ready;) {
    INFO(slurp(dir / "run.log"));
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    int status = 0;
    REQUIRE(waitpid(pid, &status, WNOHANG) == 0);
    for (const fs::path& f : run_files(out)) {
      try {
        RunInfo partial = read_run(f.string(), LoadWeights::No);
        ready = !partial.folds.empty() && !partial.folds[0].history.empty();
      } catch (...) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGINT);
  REQUIRE(wait_process(pid) == 130);
  const std::vector<fs::path> files = run_files(out);
  REQUIRE(files.size() == 1);
  const fs::path file = files.front();
  CHECK(file.parent_path() == out / "tiny");
  CHECK(read_run(file.string(), LoadWeights::No).meta.monitor == odd_metric);

  std::string log;
  const int resumed = run_command(shell_quote(chestlab_exe()) + " run --resume " + shell_quote(file.string()) + " --quiet", &log);
  INFO(log);
  REQUIRE(resumed == 0);
  const RunInfo done = read_run(file.string(), LoadWeights::No);
  CHECK(done.status == RunStatus::Complete);
  REQUIRE_FALSE(done.folds.empty());
  CHECK(done.folds[0].metric_names.front() == odd_metric);

  // rerun re-reads the recorded configuration, trains it again beside the original and
  // compares bit for bit (exit 0 when equal).
  std::string rerun_log;
  const int rerun = run_command(shell_quote(chestlab_exe()) + " rerun " + shell_quote(file.string()) + " --quiet", &rerun_log);
  INFO(rerun_log);
  CHECK(rerun == 0);
  CHECK_THAT(rerun_log, Contains("match:"));
  CHECK(run_files(out).size() == 2);  // the rerun's file went where the recorded output says
}

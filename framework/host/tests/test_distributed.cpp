// `chestlab run --distributed`: 2 ranks over Gloo on loopback match a 1-process run with the
// same global batch (2 x 4 = 8), rank 1 writes no run file; an error on either rank ends both
// within seconds with that error; --distributed-timeout bounds the wait for a silent rank;
// plus the sharding and the environment parsing on their own.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "chestlab/errors.h"
#include "chestlab/host/distributed.h"
#include "chestlab/engine/runfile.h"
#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

// A TCP port that was free a moment ago (the kernel's pick for port 0).
int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(s);
  return ntohs(addr.sin_port);
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Largest absolute difference of the losses and metrics of two histories of equal length.
double max_difference(const std::vector<HistoryRow>& a, const std::vector<HistoryRow>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t e = 0; e < a.size(); ++e) {
    CHECK(a[e].epoch == b[e].epoch);
    CHECK(a[e].lr == b[e].lr);
    worst = std::max({worst, std::abs(a[e].train_loss - b[e].train_loss), std::abs(a[e].val_loss - b[e].val_loss)});
    REQUIRE(a[e].metrics.size() == b[e].metrics.size());
    for (std::size_t m = 0; m < a[e].metrics.size(); ++m)
      worst = std::max(worst, std::abs(a[e].metrics[m] - b[e].metrics[m]));
  }
  return worst;
}

// The exit status of `pid` once it has ended, or nullopt when it is still running at `deadline`.
std::optional<int> wait_until(int pid, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    int status = 0;
    const int done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0 || std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Ranks still running when a test ends (it failed) are killed, not left waiting 30 minutes.
struct KillLeft {
  std::vector<int> pids;
  ~KillLeft() {
    for (int pid : pids) {
      ::kill(pid, SIGCONT);
      if (::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
    }
  }
  void forget(int pid) { pids.erase(std::remove(pids.begin(), pids.end(), pid), pids.end()); }
};

// Every component is the test plugin "throwing" (tests/plugins/throwing.cpp): it works unless
// CHESTLAB_TEST_THROW, given here to one rank only, says where to throw what.
void write_throwing_experiment(const fs::path& file, int epochs) {
  std::ofstream(file) << "[experiment]\nname = \"dist_fail\"\nseed = 3\n"
                         "[dataset]\nplugin = \"throwing\"\n[model]\nplugin = \"throwing\"\n"
                         "[loss]\nplugin = \"throwing\"\n[scheduler]\nplugin = \"throwing\"\n"
                         "[[metrics]]\nplugin = \"throwing\"\n"
                         "[train]\nepochs = "
                      << epochs << "\nbatch_size = 2\nworkers = 1\nthreads = 1\n[cv]\nfolds = 2\nrun_folds = [0]\n";
}

int start_rank(int rank, const std::string& port, const fs::path& exp, const fs::path& dir,
               const std::vector<std::string>& env, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{"/usr/bin/env", "RANK=" + std::to_string(rank), "WORLD_SIZE=2",
                                "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port};
  argv.insert(argv.end(), env.begin(), env.end());
  for (const std::string& a : {chestlab_exe(), std::string("run"), exp.string(), std::string("--distributed"),
                               std::string("--output"), (dir / ("rank" + std::to_string(rank))).string(),
                               std::string("--plugin-path"), (fs::path(test_plugin_dir()) / "throwing").string()})
    argv.push_back(a);
  argv.insert(argv.end(), extra.begin(), extra.end());
  return spawn_process(argv, (dir / ("rank" + std::to_string(rank) + ".log")).string());
}

}  // namespace

TEST_CASE("distributed shard_epoch gives each rank its slice of every global batch", "[distributed]") {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < 20; ++i) order.push_back(100 + i);
  // Global batches of 2 x 4: [0,8) [8,16) [16,20); rank 1's slice of the last one is empty.
  CHECK(shard_epoch(order, 4, 0, 2) == std::vector<std::size_t>{100, 101, 102, 103, 108, 109, 110, 111, 116, 117,
                                                                  118, 119});
  CHECK(shard_epoch(order, 4, 1, 2) == std::vector<std::size_t>{104, 105, 106, 107, 112, 113, 114, 115});
  CHECK(shard_epoch(order, 3, 0, 1) == order);
}

TEST_CASE("distributed environment: torchrun variables or Slurm's with the documented fallbacks", "[distributed]") {
  std::map<std::string, std::string> vars;
  auto get = [&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  CHECK_THROWS_AS(distributed_env_from(get), ConfigError);
  vars = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.5"}, {"MASTER_PORT", "1234"}};
  DistributedEnv env = distributed_env_from(get);
  CHECK(env.rank == 1);
  CHECK(env.world_size == 2);
  CHECK(env.master_addr == "10.0.0.5");
  CHECK(env.master_port == 1234);
  vars["RANK"] = "2";  // not below WORLD_SIZE
  CHECK_THROWS_AS(distributed_env_from(get), ConfigError);
  vars = {{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_ID", "12345"}};
  env = distributed_env_from(get);
  CHECK(env.rank == 3);
  CHECK(env.world_size == 4);
  CHECK(env.master_addr == "127.0.0.1");
  CHECK(env.master_port == 29500 + 345);
  vars["SLURM_NNODES"] = "2";  // several nodes: the address cannot be guessed
  CHECK_THROWS_AS(distributed_env_from(get), ConfigError);
}

TEST_CASE("distributed run on 2 ranks over Gloo matches 1 process with the same global batch", "[distributed][e2e]") {
  const fs::path dir = scratch_dir("distributed");
  const std::string exe = chestlab_exe();
  // No BatchNorm and a per-pixel mean loss: the gradient of a global batch is then exactly the
  // sample-weighted mean of the ranks' gradients, so only float rounding separates the runs.
  // 20 training samples in global batches of 8: the last one (4) leaves rank 1 empty-handed.
  const fs::path exp = dir / "dist.toml";
  std::ofstream(exp) << R"([experiment]
name = "dist"
seed = 7
[dataset]
plugin = "synthetic_cxr"
count = 40
image_size = 32
positive_fraction = 0.7
[[dataset.augment]]
type = "hflip"
p = 0.5
[model]
plugin = "unet"
depth = 2
channels = 4
batch_norm = false
[loss]
plugin = "bce"
[optimizer]
name = "adam"
lr = 0.01
[scheduler]
plugin = "cosine"
[[metrics]]
plugin = "mean_iou"
monitor = true
[[metrics]]
plugin = "pixel_accuracy"
[train]
epochs = 4
batch_size = 4
workers = 1
threads = 1
deterministic = true
[cv]
folds = 2
run_folds = [0]
)";
  const std::string port = std::to_string(free_port());
  std::vector<int> pids;
  for (int rank = 0; rank < 2; ++rank) {
    const fs::path out = dir / ("rank" + std::to_string(rank));
    pids.push_back(spawn_process({"/usr/bin/env", "RANK=" + std::to_string(rank), "WORLD_SIZE=2",
                                  "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port, exe, "run", exp.string(),
                                  "--distributed", "--output", out.string()},
                                 (dir / ("rank" + std::to_string(rank) + ".log")).string()));
  }
  const int status0 = wait_process(pids[0]), status1 = wait_process(pids[1]);
  INFO("rank 0:\n" << slurp(dir / "rank0.log") << "\nrank 1:\n" << slurp(dir / "rank1.log"));
  REQUIRE(status0 == 0);
  REQUIRE(status1 == 0);
  CHECK(slurp(dir / "rank1.log").find("no run file on this rank") != std::string::npos);
  CHECK(run_files(dir / "rank1").empty());  // only rank 0 writes
  const auto distributed = run_files(dir / "rank0");
  REQUIRE(distributed.size() == 1);

  std::string log;
  const std::string single = " --set train.threads=2 --quiet --output ";
  REQUIRE(run_command(shell_quote(exe) + " run " + shell_quote(exp.string()) + " --set train.batch_size=8" + single +
                          shell_quote((dir / "single8").string()),
                      &log) == 0);
  REQUIRE(run_command(shell_quote(exe) + " run " + shell_quote(exp.string()) + " --set train.batch_size=4" + single +
                          shell_quote((dir / "single4").string()),
                      &log) == 0);
  const auto same_batch = run_files(dir / "single8"), rank_batch = run_files(dir / "single4");
  REQUIRE(same_batch.size() == 1);
  REQUIRE(rank_batch.size() == 1);
  const auto history = [](const fs::path& f) { return read_run(f.string(), LoadWeights::No).folds.at(0).history; };
  const auto d = history(distributed[0]), s8 = history(same_batch[0]), s4 = history(rank_batch[0]);
  REQUIRE(d.size() == 4);
  // Tolerance 1e-4 on losses and metrics: the runs add the same float32 numbers in another
  // order (per-rank means, then the weighted all-reduce, versus one mean over 8), which moves
  // the last bits of each step; over 4 epochs of Adam that stays far below 1e-4.
  const double same = max_difference(d, s8);
  CHECK(same < 1e-4);
  // The tolerance separates: training with the per-rank batch (4) alone differs clearly.
  const double other = max_difference(d, s4);
  CHECK(other > 1e-3);
  WARN("distributed vs 1 process, global batch 8: max |difference| " << same << "; vs batch 4: " << other);

  // The run file says how many processes trained it, and rerun refuses to redo it in one.
  CHECK(read_run(distributed[0].string(), LoadWeights::No).environment.world_size == 2);
  CHECK(read_run(same_batch[0].string(), LoadWeights::No).environment.world_size == 1);
  const int rerun = run_command(shell_quote(exe) + " rerun " + shell_quote(distributed[0].string()) + " --quiet", &log);
  INFO(log);
  CHECK(rerun == 2);
  CHECK(log.find("trained by 2 processes") != std::string::npos);
  const int resume = run_command(shell_quote(exe) + " run --resume " + shell_quote(distributed[0].string()) + " --quiet", &log);
  CHECK(resume == 2);
  CHECK(log.find("trained by 2 processes") != std::string::npos);
}

TEST_CASE("distributed: an error on one rank ends every rank within seconds with that error",
          "[distributed][e2e]") {
  // Rank 1 fails reading a training sample while rank 0 waits for it in the step's all-reduce;
  // rank 0 fails validating (rank 0 validates alone) while rank 1 waits in the broadcast.
  const struct {
    int failing;
    const char* spec;
  } cases[] = {{1, "dataset.get=data"}, {0, "metric.update=data"}};
  for (const auto& c : cases) {
    const fs::path dir = scratch_dir("distributed_fail_rank" + std::to_string(c.failing));
    const fs::path exp = dir / "fail.toml";
    write_throwing_experiment(exp, 3);
    const std::string port = std::to_string(free_port());
    KillLeft left;
    // The collective timeout stays at 30 minutes: ending within seconds must not come from it.
    const auto start = std::chrono::steady_clock::now();
    for (int rank = 0; rank < 2; ++rank) {
      std::vector<std::string> env;
      if (rank == c.failing) env.push_back(std::string("CHESTLAB_TEST_THROW=") + c.spec);
      left.pids.push_back(start_rank(rank, port, exp, dir, env, {}));
      REQUIRE(left.pids.back() > 0);
    }
    // When each rank ends (seconds since the start), polled together.
    std::optional<int> codes[2];
    double ended[2] = {0, 0};
    const auto deadline = start + std::chrono::seconds(120);
    while ((!codes[0] || !codes[1]) && std::chrono::steady_clock::now() < deadline) {
      for (int r = 0; r < 2; ++r)
        if (!codes[r] && (codes[r] = wait_until(left.pids[r], std::chrono::steady_clock::now())))
          ended[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::optional<int>&code0 = codes[0], &code1 = codes[1];
    const std::string log0 = slurp(dir / "rank0.log"), log1 = slurp(dir / "rank1.log");
    INFO("failing rank " << c.failing << " (" << c.spec << "), rank 0 ended at " << ended[0] << " s, rank 1 at "
                         << ended[1] << " s\nrank 0:\n" << log0 << "\nrank 1:\n" << log1);
    REQUIRE(code0.has_value());
    REQUIRE(code1.has_value());
    left.pids.clear();
    // The other rank ends within seconds of the failing one (the collective timeout is 30 min).
    CHECK(ended[1 - c.failing] - ended[c.failing] < 10);
    // Both end with the data error's exit code; the other rank names the failing one.
    CHECK(*code0 == 3);
    CHECK(*code1 == 3);
    const std::string& failing_log = c.failing == 0 ? log0 : log1;
    const std::string& other_log = c.failing == 0 ? log1 : log0;
    const std::string injected = std::string("injected data error in ") + c.spec;
    CHECK_THAT(failing_log, Catch::Contains(injected.substr(0, injected.find('='))));
    CHECK_THAT(other_log, Catch::Contains("data error: rank " + std::to_string(c.failing) + ": ") &&
                              Catch::Contains(injected.substr(0, injected.find('='))));
  }
}

TEST_CASE("distributed: --distributed-timeout bounds the wait for a rank that stops answering",
          "[distributed][e2e]") {
  const fs::path dir = scratch_dir("distributed_timeout");
  const fs::path exp = dir / "long.toml";
  write_throwing_experiment(exp, 2000);  // far longer than the test: rank 1 is stopped midway
  std::string log;
  CHECK(run_command(shell_quote(chestlab_exe()) + " run " + shell_quote(exp.string()) +
                        " --distributed-timeout 5 --plugin-path " +
                        shell_quote((fs::path(test_plugin_dir()) / "throwing").string()),
                    &log) == 2);
  CHECK_THAT(log, Catch::Contains("--distributed-timeout goes with --distributed"));

  const std::string port = std::to_string(free_port());
  KillLeft left;
  for (int rank = 0; rank < 2; ++rank) {
    left.pids.push_back(start_rank(rank, port, exp, dir, {}, {"--distributed-timeout", "3"}));
    REQUIRE(left.pids.back() > 0);
  }
  // Once rank 0 trains (its run file exists), rank 1 stops answering (SIGSTOP: alive, silent).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (run_files(dir / "rank0").empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE_FALSE(run_files(dir / "rank0").empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(::kill(left.pids[1], SIGSTOP) == 0);
  const auto stopped = std::chrono::steady_clock::now();
  const std::optional<int> code0 = wait_until(left.pids[0], stopped + std::chrono::seconds(60));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  {
    INFO("rank 0 after " << seconds << " s:\n" << slurp(dir / "rank0.log"));
    REQUIRE(code0.has_value());
    left.forget(left.pids[0]);
    // 3 s in the collective, then a moment to learn why (nobody says), not 30 minutes.
    CHECK(seconds < 20);
    CHECK(*code0 == 1);
    CHECK_THAT(slurp(dir / "rank0.log"), Catch::Contains("waits 3 s for the others") &&
                                             Catch::Contains("--distributed-timeout"));
  }
  // Rank 1, let go again, finds rank 0 gone and ends too.
  REQUIRE(::kill(left.pids[1], SIGCONT) == 0);
  const std::optional<int> code1 = wait_until(left.pids[1], std::chrono::steady_clock::now() + std::chrono::seconds(30));
  INFO("rank 1:\n" << slurp(dir / "rank1.log"));
  REQUIRE(code1.has_value());
  left.pids.clear();
  CHECK(*code1 != 0);
}

// `chestlab run --distributed`: 2 ranks over Gloo on loopback match a 1-process run with the
// same global batch (2 x 4 = 8), rank 1 writes no run file; plus the sharding and the
// environment parsing on their own.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "chestlab/errors.h"
#include "chestlab/host/distributed.h"
#include "chestlab/engine/runfile.h"
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

std::vector<fs::path> run_files(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ".h5") out.push_back(e.path());
  return out;
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

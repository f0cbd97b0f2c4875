#include "chestlab/host/distributed.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "chestlab/errors.h"

namespace chestlab {

namespace {

int env_int(const std::function<const char*(const char*)>& getenv_fn, const char* name, int fallback, int low,
            int high) {
  const char* text = getenv_fn(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end || value < low || value > high)
    throw ConfigError(fmt::format("--distributed: {}='{}' must be an integer from {} to {}", name, text, low, high));
  return static_cast<int>(value);
}

}  // namespace

DistributedEnv distributed_env_from(const std::function<const char*(const char*)>& getenv_fn) {
  DistributedEnv env;
  const auto set = [&](const char* name) { return getenv_fn(name) && *getenv_fn(name); };
  const bool slurm = !set("RANK") && !set("WORLD_SIZE") && set("SLURM_PROCID") && set("SLURM_NTASKS");
  if (!slurm && (!set("RANK") || !set("WORLD_SIZE")))
    throw ConfigError(
        "--distributed needs RANK and WORLD_SIZE (or Slurm's SLURM_PROCID and SLURM_NTASKS) in the environment, "
        "with MASTER_ADDR and MASTER_PORT (default 127.0.0.1 and 29500); see docs/distributed.md");
  env.source = slurm ? "SLURM_PROCID/SLURM_NTASKS" : "RANK/WORLD_SIZE";
  env.world_size = env_int(getenv_fn, slurm ? "SLURM_NTASKS" : "WORLD_SIZE", 1, 1, 1 << 20);
  env.rank = env_int(getenv_fn, slurm ? "SLURM_PROCID" : "RANK", 0, 0, env.world_size - 1);
  if (set("MASTER_ADDR")) {
    env.master_addr = getenv_fn("MASTER_ADDR");
  } else if (slurm && env_int(getenv_fn, "SLURM_NNODES", 1, 1, 1 << 20) > 1) {
    throw ConfigError(
        "--distributed under Slurm on more than one node needs MASTER_ADDR (e.g. export MASTER_ADDR=$(scontrol show "
        "hostnames \"$SLURM_JOB_NODELIST\" | head -n 1))");
  } else {
    env.master_addr = "127.0.0.1";
  }
  const int default_port = slurm ? 29500 + env_int(getenv_fn, "SLURM_JOB_ID", 0, 0, 1 << 30) % 1000 : 29500;
  env.master_port = env_int(getenv_fn, "MASTER_PORT", default_port, 1, 65535);
  return env;
}

DistributedEnv distributed_env() {
  return distributed_env_from([](const char* name) { return std::getenv(name); });
}

namespace {

// The failure announcement in the rendezvous store: "<exit code>\n<rank>\n<message>", and how
// many other ranks have read it. Store::set/check/get/add are the same in LibTorch 1.13 and 2.x.
constexpr const char* kFailureKey = "chestlab/failure";
constexpr const char* kFailureSeenKey = "chestlab/failure_seen";
constexpr auto kPoll = std::chrono::milliseconds(200);
// How long a failing rank waits for the others to read its announcement (rank 0 holds the
// store: once it has ended, nobody can read it).
constexpr auto kAckWait = std::chrono::seconds(3);
// How long a rank that knows of another's failure may stay stuck before it ends itself.
constexpr auto kGrace = std::chrono::seconds(5);
constexpr std::chrono::milliseconds kGlooDefaultTimeout{30 * 60 * 1000};  // c10d's default

struct Failure {
  int exit_code = 1;
  int rank = -1;
  std::string message;
};

std::string encode(const Failure& f) { return fmt::format("{}\n{}\n{}", f.exit_code, f.rank, f.message); }

std::optional<Failure> decode(const std::vector<std::uint8_t>& bytes) {
  const std::string text(bytes.begin(), bytes.end());
  const auto a = text.find('\n');
  const auto b = a == std::string::npos ? a : text.find('\n', a + 1);
  if (b == std::string::npos) return std::nullopt;
  Failure f;
  f.exit_code = std::atoi(text.substr(0, a).c_str());
  f.rank = std::atoi(text.substr(a + 1, b - a - 1).c_str());
  f.message = text.substr(b + 1);
  return f;
}

// The class an exit code stands for (errors.h), so that every rank ends with the same code.
[[noreturn]] void throw_failure(const Failure& f) {
  const std::string where = fmt::format("rank {}", f.rank);
  if (f.exit_code == 2) throw ConfigError(where + ": " + f.message);
  if (f.exit_code == 3) throw DataError(where, f.message);
  throw std::runtime_error(where + ": " + f.message);
}

Failure failure_of(const std::exception_ptr& error, int rank) {
  Failure f;
  f.rank = rank;
  try {
    std::rethrow_exception(error);
  } catch (const ConfigError& e) {
    f.exit_code = 2;
    f.message = e.what();
  } catch (const DataError& e) {
    f.exit_code = 3;
    f.message = e.what();
  } catch (const std::exception& e) {
    f.message = e.what();
  } catch (...) {
    f.message = "an unknown exception (not a std::exception)";
  }
  return f;
}

}  // namespace

struct DistributedContext::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int rank = 0, world_size = 1;
  std::mutex mutex;
  std::optional<Failure> failure;         // another rank's, once read (guarded by mutex)
  std::atomic<bool> failed{false};        // `failure` is set
  std::atomic<bool> announced{false};     // this rank announced its own failure
  std::atomic<bool> watching{false};      // the watcher still reads the store
  std::atomic<bool> stop{false};
  std::thread watcher;

  template <typename F>
  void call(F&& f) {
#ifdef USE_C10D_NCCL
    if (nccl) return f(*nccl);
#endif
    f(*gloo);
  }

  Failure recorded() {
    std::lock_guard<std::mutex> lock(mutex);
    return *failure;
  }

  bool sleep_unless_stopped(std::chrono::milliseconds total) {
    for (auto slept = std::chrono::milliseconds(0); slept < total; slept += std::chrono::milliseconds(50)) {
      if (stop.load()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return !stop.load();
  }

  // Reads the store until another rank announces a failure (or the store is gone: rank 0
  // ended, and the collectives will say so), then records it; if this process is still
  // here kGrace later, stuck in a collective with a rank that hangs, it ends itself.
  void watch() {
    while (sleep_unless_stopped(kPoll) && !announced.load()) {
      std::optional<Failure> f;
      try {
        if (!store->check({kFailureKey})) continue;
        f = decode(store->get(kFailureKey));
        if (!f || f->rank == rank || announced.load()) break;
        store->add(kFailureSeenKey, 1);
      } catch (const std::exception&) {
        break;
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        failure = *f;
      }
      failed.store(true);
      watching.store(false);
      if (!sleep_unless_stopped(kGrace)) return;
      // The host prints nothing otherwise; this is the end of the process, and its only say.
      std::fprintf(stderr, "\nerror: rank %d: %s\n(rank %d was still waiting for the other ranks %lld s later; "
                           "it ends with the failing rank's exit code)\n",
                   f->rank, f->message.c_str(), rank, static_cast<long long>(kGrace.count()));
      std::fflush(stderr);
      std::_Exit(f->exit_code);
    }
    watching.store(false);
  }
};

DistributedContext::DistributedContext(const DistributedEnv& env, torch::Device device)
    : env_(env), device_(device), impl_(std::make_unique<Impl>()) {
  impl_->rank = env.rank;
  impl_->world_size = env.world_size;
  const bool timed = env.timeout.count() > 0;
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = env.world_size;
  impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  const auto start_watching = [this] {
    impl_->watching.store(true);
    impl_->watcher = std::thread([impl = impl_.get()] { impl->watch(); });
  };
#ifdef USE_C10D_NCCL
  if (device.is_cuda()) {
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    if (timed) nccl_options->timeout = env.timeout;
    impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, nccl_options);
    start_watching();
    return;
  }
#endif
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(timed ? env.timeout : kGlooDefaultTimeout);
  // GLOO_SOCKET_IFNAME picks the network interface (as in PyTorch); a loopback master means
  // one machine; otherwise the interface this host's name resolves to.
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname && *ifname)
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, gloo_options);
  start_watching();
}

DistributedContext::~DistributedContext() {
  // The process group first: should its end hang, the watcher can still end the process.
  impl_->gloo.reset();
#ifdef USE_C10D_NCCL
  impl_->nccl.reset();
#endif
  impl_->stop.store(true);
  if (impl_->watcher.joinable()) impl_->watcher.join();
}

template <typename F>
void DistributedContext::collective(const char* what, F&& f) {
  if (impl_->failed.load()) throw_failure(impl_->recorded());  // stop at once, not at the timeout
  try {
    impl_->call(std::forward<F>(f));
  } catch (const std::exception& e) {
    // A rank that fails announces it before it ends; its end is what broke this collective.
    // Give the watcher a moment to read the announcement, then fail with that error.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!impl_->failed.load() && impl_->watching.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (impl_->failed.load()) throw_failure(impl_->recorded());
    std::string detail = e.what();
    detail = detail.substr(0, detail.find('\n'));
    const auto timeout = env_.timeout.count() > 0 ? env_.timeout : kGlooDefaultTimeout;
    throw std::runtime_error(fmt::format(
        "rank {}: {} with the other ranks failed ({}): another rank ended or stopped answering, or the network "
        "failed; a collective waits {} s for the others (run --distributed-timeout SECONDS to change it)",
        env_.rank, what, detail, std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
  }
}

void DistributedContext::announce_failure(const std::exception_ptr& error) noexcept {
  if (!error || impl_->failed.load() || impl_->announced.exchange(true)) return;
  try {
    const std::string text = encode(failure_of(error, env_.rank));
    impl_->store->set(kFailureKey, std::vector<std::uint8_t>(text.begin(), text.end()));
    const auto deadline = std::chrono::steady_clock::now() + kAckWait;
    while (impl_->store->add(kFailureSeenKey, 0) < env_.world_size - 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } catch (...) {
    // The store is gone (rank 0 ended): the others learn of it from their collectives.
  }
}

const char* DistributedContext::backend() const {
#ifdef USE_C10D_NCCL
  if (impl_->nccl) return "nccl";
#endif
  return "gloo";
}

void DistributedContext::all_reduce_sum(torch::Tensor& tensor) {
  const bool via_cpu = tensor.is_cuda() && std::string(backend()) == "gloo";
  std::vector<torch::Tensor> tensors{via_cpu ? tensor.to(torch::kCPU) : tensor};
  collective("an all-reduce", [&](auto& group) { group.allreduce(tensors)->wait(); });
  if (via_cpu) tensor.copy_(tensors[0]);
}

void DistributedContext::broadcast(torch::Tensor& tensor, int root) {
  const bool via_cpu = tensor.is_cuda() && std::string(backend()) == "gloo";
  std::vector<torch::Tensor> tensors{via_cpu ? tensor.to(torch::kCPU) : tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  collective("a broadcast", [&](auto& group) { group.broadcast(tensors, options)->wait(); });
  if (via_cpu) tensor.copy_(tensors[0]);
}

void DistributedContext::barrier() {
  collective("a barrier", [&](auto& group) { group.barrier()->wait(); });
}

void all_reduce_gradients(DistributedContext& context, torch::nn::Module& model, double samples,
                          double total_samples) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params = model.parameters(true);
  std::vector<torch::Tensor> flat;
  for (auto& p : params) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined() || samples == 0) p.mutable_grad() = torch::zeros_like(p);
    flat.push_back(p.grad().reshape({-1}));
  }
  if (flat.empty()) return;
  torch::Tensor buffer = torch::cat(flat) * samples;
  context.all_reduce_sum(buffer);
  buffer.div_(total_samples > 0 ? total_samples : 1.0);
  std::int64_t offset = 0;
  for (auto& p : params) {
    if (!p.requires_grad()) continue;
    const std::int64_t n = p.numel();
    p.mutable_grad().copy_(buffer.slice(0, offset, offset + n).view_as(p));
    offset += n;
  }
}

void broadcast_state(DistributedContext& context, torch::nn::Module& model, bool buffers_only) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors = model.buffers(true);
  if (!buffers_only) {
    auto params = model.parameters(true);
    tensors.insert(tensors.end(), params.begin(), params.end());
  }
  for (auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    torch::Tensor copy = t.contiguous();
    context.broadcast(copy, 0);
    if (!copy.is_same(t)) t.copy_(copy);
  }
}

std::vector<std::size_t> shard_epoch(const std::vector<std::size_t>& order, std::size_t per_rank_batch, int rank,
                                     int world_size) {
  std::vector<std::size_t> mine;
  const std::size_t global = per_rank_batch * static_cast<std::size_t>(world_size);
  for (std::size_t start = 0; start < order.size(); start += global) {
    const std::size_t begin = std::min(order.size(), start + per_rank_batch * static_cast<std::size_t>(rank));
    const std::size_t end = std::min(order.size(), begin + per_rank_batch);
    mine.insert(mine.end(), order.begin() + static_cast<std::ptrdiff_t>(begin),
                order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return mine;
}

void DistributedSync::start_fold(torch::nn::Module& model) {
  // Same seed, same weights on every rank already; the broadcast makes it a guarantee.
  broadcast_state(context_, model, /*buffers_only=*/false);
}

std::vector<std::size_t> DistributedSync::shard(const std::vector<std::size_t>& order, std::size_t batch_size) {
  return shard_epoch(order, batch_size, context_.rank(), context_.world_size());
}

StepTotals DistributedSync::sum(const StepTotals& mine) {
  // [loss * samples, samples, interrupted] in one all-reduce, in double precision. Every
  // process must know the step's samples and interrupt at once, so this step's numbers come
  // to the host: one wait for the device per step, the loss read with them.
  const double loss_sum = mine.loss_sum.defined() ? mine.loss_sum.item<double>() : 0.0;
  torch::Tensor numbers = torch::tensor({loss_sum, mine.samples, mine.stop ? 1.0 : 0.0}, torch::kFloat64);
  context_.all_reduce_sum(numbers);
  const double* summed = numbers.data_ptr<double>();
  return StepTotals{torch::tensor(summed[0], torch::kFloat64), summed[1], summed[2] > 0};
}

void DistributedSync::average_gradients(torch::nn::Module& model, double samples, double total_samples) {
  all_reduce_gradients(context_, model, samples, total_samples);
}

HistoryRow DistributedSync::validation(torch::nn::Module& model, std::size_t metrics,
                                       const std::function<HistoryRow()>& validate) {
  // Rank 0's running statistics (BatchNorm) everywhere, then rank 0 validates alone and
  // broadcasts [val_loss, metrics...]: every rank then takes the same monitor decision.
  broadcast_state(context_, model, /*buffers_only=*/true);
  HistoryRow row;
  if (context_.is_root()) row = validate();
  torch::Tensor numbers = torch::zeros({static_cast<std::int64_t>(metrics) + 1}, torch::kFloat64);
  if (context_.is_root()) {
    numbers[0] = row.val_loss;
    for (std::size_t i = 0; i < row.metrics.size(); ++i) numbers[static_cast<std::int64_t>(i) + 1] = row.metrics[i];
  }
  context_.broadcast(numbers, 0);
  if (!context_.is_root()) {
    row.val_loss = numbers[0].item<double>();
    for (std::size_t i = 0; i < metrics; ++i)
      row.metrics.push_back(numbers[static_cast<std::int64_t>(i) + 1].item<double>());
  }
  return row;
}

bool DistributedSync::any(bool flag) {
  torch::Tensor number = torch::full({1}, flag ? 1.0 : 0.0, torch::kFloat64);
  context_.all_reduce_sum(number);
  return number.item<double>() > 0;
}

}  // namespace chestlab

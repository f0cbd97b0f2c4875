#include "chestlab/host/distributed.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

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

struct DistributedContext::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  template <typename F>
  void call(F&& f) {
#ifdef USE_C10D_NCCL
    if (nccl) return f(*nccl);
#endif
    f(*gloo);
  }
};

DistributedContext::DistributedContext(const DistributedEnv& env, torch::Device device)
    : env_(env), device_(device), impl_(std::make_unique<Impl>()) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = env.world_size;
  impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
#ifdef USE_C10D_NCCL
  if (device.is_cuda()) {
    impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size);
    return;
  }
#endif
  auto gloo_options = c10d::ProcessGroupGloo::Options::create();
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
}

DistributedContext::~DistributedContext() = default;

const char* DistributedContext::backend() const {
#ifdef USE_C10D_NCCL
  if (impl_->nccl) return "nccl";
#endif
  return "gloo";
}

void DistributedContext::all_reduce_sum(torch::Tensor& tensor) {
  const bool via_cpu = tensor.is_cuda() && std::string(backend()) == "gloo";
  std::vector<torch::Tensor> tensors{via_cpu ? tensor.to(torch::kCPU) : tensor};
  impl_->call([&](auto& group) { group.allreduce(tensors)->wait(); });
  if (via_cpu) tensor.copy_(tensors[0]);
}

void DistributedContext::broadcast(torch::Tensor& tensor, int root) {
  const bool via_cpu = tensor.is_cuda() && std::string(backend()) == "gloo";
  std::vector<torch::Tensor> tensors{via_cpu ? tensor.to(torch::kCPU) : tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  impl_->call([&](auto& group) { group.broadcast(tensors, options)->wait(); });
  if (via_cpu) tensor.copy_(tensors[0]);
}

void DistributedContext::barrier() {
  impl_->call([&](auto& group) { group.barrier()->wait(); });
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
  // [loss * samples, samples, interrupted] in one all-reduce, in double precision.
  torch::Tensor numbers = torch::tensor({mine.loss_sum, mine.samples, mine.stop ? 1.0 : 0.0}, torch::kFloat64);
  context_.all_reduce_sum(numbers);
  return StepTotals{numbers[0].item<double>(), numbers[1].item<double>(), numbers[2].item<double>() > 0};
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

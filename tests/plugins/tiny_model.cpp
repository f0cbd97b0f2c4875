// A one-convolution mask model, compiled several times under different names and ABI
// stamps to exercise plugin discovery.
#include <torch/torch.h>

#include "chestlab/sdk.h"

namespace {

struct TinyModel : chestlab::Model {
  torch::nn::Conv2d conv{nullptr};
  explicit TinyModel(std::int64_t channels) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, channels, 3).padding(1)));
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 1, 1)));
  }
  chestlab::ModelOutput forward(const torch::Tensor& x) override {
    return {head->forward(torch::relu(conv->forward(x))), {}, {}};
  }
  torch::nn::Conv2d head{nullptr};
};

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  chestlab::ComponentInfo info;
  info.name = CHESTLAB_TEST_MODEL_NAME;
  info.version = "0.0.1";
  info.description = "test model: one 3x3 convolution and a 1x1 head";
  info.params = {chestlab::param_int("channels", 4, "width").range(1, 64)};
  info.output = chestlab::OutputKind::Mask;
  registrar.add_model(info, [](const chestlab::Params& p, const chestlab::ModelContext&) {
    return std::make_shared<TinyModel>(p.integer("channels"));
  });
}

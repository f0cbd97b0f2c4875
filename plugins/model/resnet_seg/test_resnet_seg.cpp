// resnet_seg's `head = "transposed"` variant (the capstone report's head).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <memory>

#include "chestlab/errors.h"
#include "chestlab/host/registry.h"
#include "torch_helpers.h"

using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

const PluginRegistry& registry() { return test::plugins(); }

std::shared_ptr<Model> make_transposed(std::int64_t channels, std::int64_t depth, std::int64_t blocks,
                                       const std::string& head = "transposed") {
  const auto& reg = registry();
  return reg.make_model("resnet_seg", reg.params_for(Kind::Model, "resnet_seg",
                                                     {{"channels", channels},
                                                      {"depth", depth},
                                                      {"blocks", blocks},
                                                      {"head", head}}));
}

}  // namespace

TEST_CASE("resnet_seg transposed head: mask logits of the input size", "[resnet_seg]") {
  CHECK(registry().params_for(Kind::Model, "resnet_seg").str("head") == "kernel");
  torch::NoGradGuard no_grad;
  struct Case { std::int64_t depth, height, width; };
  for (const Case& c : {Case{2, 16, 16}, Case{2, 8, 12}, Case{3, 32, 24}, Case{4, 48, 16}, Case{5, 64, 32}}) {
    auto model = make_transposed(4, c.depth, 1);
    model->eval();
    INFO("depth " << c.depth << ", input " << c.height << "x" << c.width);
    const auto out = model->forward(torch::randn({2, 1, c.height, c.width}));
    CHECK(out.mask_logits.sizes() == torch::IntArrayRef({2, 1, c.height, c.width}));
    CHECK(torch::isfinite(out.mask_logits).all().item<bool>());
  }
}

TEST_CASE("resnet_seg transposed head: layers and sizes inside the head", "[resnet_seg]") {
  auto model = make_transposed(4, 3, 0);
  std::map<std::string, std::vector<std::int64_t>> shapes;
  for (const auto& item : model->named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  CHECK(shapes.at("head.conv1.weight") == std::vector<std::int64_t>{256, 32, 1, 1});
  CHECK(shapes.at("head.up.weight") == std::vector<std::int64_t>{256, 128, 8, 8});  // [in, out, k, k]
  CHECK(shapes.at("head.conv2.weight") == std::vector<std::int64_t>{1, 128, 1, 1});
  CHECK(shapes.at("head.bn3.weight") == std::vector<std::int64_t>{128});
  CHECK(shapes.count("head.conv.weight") == 0);  // the kernel head's layer is not there
  // The transposed convolution makes the head's map exactly 4x larger: depth 3 on 32x32
  // leaves 4x4 after the stages, 16x16 after it, then 2^(3-2) = 2x to 32x32.
  torch::NoGradGuard no_grad;
  std::shared_ptr<torch::nn::Module> up;
  for (const auto& item : model->named_modules()) if (item.key() == "head.up") up = item.value();
  REQUIRE(up);
  auto* transposed = up->as<torch::nn::ConvTranspose2dImpl>();
  REQUIRE(transposed != nullptr);
  CHECK(transposed->forward(torch::zeros({1, 256, 4, 4})).sizes() == torch::IntArrayRef({1, 128, 16, 16}));
  CHECK(transposed->forward(torch::zeros({1, 256, 3, 5})).sizes() == torch::IntArrayRef({1, 128, 12, 20}));
}

TEST_CASE("resnet_seg transposed head: needs depth 2 and learns", "[resnet_seg]") {
  CHECK_THROWS_WITH(make_transposed(4, 1, 1), Contains("depth >= 2"));
  CHECK_THROWS_AS(make_transposed(4, 1, 1), ConfigError);
  CHECK_THROWS_AS(make_transposed(4, 3, 1, "other"), ConfigError);

  torch::manual_seed(3);
  auto model = make_transposed(4, 2, 1);
  const auto images = torch::rand({4, 1, 16, 16});
  const auto masks = (images > 0.5).to(torch::kFloat32);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 15; ++step) {
    optimizer.zero_grad();
    auto loss = torch::binary_cross_entropy_with_logits(model->forward(images).mask_logits, masks);
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  CHECK(last < 0.8 * first);
}

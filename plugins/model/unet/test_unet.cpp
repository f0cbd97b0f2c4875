// The unet model through the plugin registry: output shapes across configurations, the
// notebook_simple preset layer by layer with its parameter count computed by hand, input
// checks, and a short training run that must lower the loss.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>

#include "torch_helpers.h"
#include "chestlab/errors.h"
#include "chestlab/host/registry.h"

using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

using Given = std::map<std::string, ParamValue>;

std::shared_ptr<Model> make_unet(const Given& given, std::int64_t in_channels = 1) {
  const auto& reg = test::plugins();
  ModelContext context;
  context.in_channels = in_channels;
  return reg.make_model("unet", reg.params_for(Kind::Model, "unet", given), context);
}

std::int64_t parameter_count(const torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::vector<std::int64_t> output_shape(Model& model, std::int64_t batch, std::int64_t height, std::int64_t width) {
  torch::NoGradGuard no_grad;
  return model.forward(torch::randn({batch, model.parameters().front().size(1), height, width})).mask_logits.sizes().vec();
}

// A one-line description of a leaf module of the types unet uses; anything else shows up
// as "other", so an unexpected layer fails the structure test.
std::string describe(const torch::nn::Module& m) {
  std::ostringstream out;
  if (auto* conv = m.as<torch::nn::Conv2dImpl>()) {
    const auto& w = conv->weight;
    out << "conv" << w.size(2) << "x" << w.size(3) << " " << w.size(1) << "->" << w.size(0) << " stride "
        << (*conv->options.stride())[0] << (conv->bias.defined() ? " bias" : " no-bias");
  } else if (m.as<torch::nn::ReLUImpl>()) {
    out << "relu";
  } else if (auto* pool = m.as<torch::nn::MaxPool2dImpl>()) {
    out << "maxpool" << (*pool->options.kernel_size())[0];
  } else if (auto* up = m.as<torch::nn::UpsampleImpl>()) {
    out << "upsample " << torch::enumtype::get_enum_name(up->options.mode()) << " x"
        << up->options.scale_factor().value().at(0);
  } else if (auto* pad = m.as<torch::nn::ZeroPad2dImpl>()) {
    const auto& p = *pad->options.padding();
    out << "zeropad left " << p[0] << " right " << p[1] << " top " << p[2] << " bottom " << p[3];
  } else if (auto* drop = m.as<torch::nn::DropoutImpl>()) {
    out << "dropout " << drop->options.p();
  } else if (m.as<torch::nn::BatchNorm2dImpl>()) {
    out << "batchnorm";
  } else {
    out << "other";
  }
  return out.str();
}

std::vector<std::string> leaf_layers(const torch::nn::Module& model) {
  std::vector<std::string> layers;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (item.value()->children().empty()) layers.push_back(item.key() + ": " + describe(*item.value()));
  }
  return layers;
}

}  // namespace

TEST_CASE("unet keeps the input size for every depth, resampling kind and block kind", "[unet]") {
  for (std::int64_t depth : {2, 3, 4}) {
    for (const std::string downsample : {"maxpool", "strided"}) {
      for (const std::string upsample : {"upsample_conv", "transposed"}) {
        for (bool residual : {false, true}) {
          INFO("depth " << depth << ", " << downsample << ", " << upsample << ", residual " << residual);
          auto model = make_unet({{"depth", depth},
                                  {"channels", std::int64_t{4}},
                                  {"downsample", downsample},
                                  {"upsample", upsample},
                                  {"residual", residual},
                                  {"convs_per_level", std::int64_t{1 + depth % 2}}});
          const std::int64_t unit = std::int64_t{1} << depth;
          CHECK(output_shape(*model, 2, unit, unit) == std::vector<std::int64_t>{2, 1, unit, unit});
          CHECK(output_shape(*model, 1, 2 * unit, 3 * unit) == std::vector<std::int64_t>{1, 1, 2 * unit, 3 * unit});
        }
      }
    }
  }
  for (const std::string activation : {"leaky_relu", "elu"}) {
    auto model = make_unet({{"depth", std::int64_t{2}},
                            {"channels", std::int64_t{4}},
                            {"growth", 1.5},
                            {"activation", activation},
                            {"batch_norm", false},
                            {"dropout", 0.2}});
    CHECK(output_shape(*model, 2, 24, 16) == std::vector<std::int64_t>{2, 1, 24, 16});
  }
  auto rgb = make_unet({{"depth", std::int64_t{2}}, {"channels", std::int64_t{4}}}, /*in_channels=*/3);
  CHECK(output_shape(*rgb, 1, 8, 8) == std::vector<std::int64_t>{1, 1, 8, 8});
}

TEST_CASE("unet widths: growth rounding and concatenating residual blocks", "[unet]") {
  // growth 1.5 from 4 channels: levels 4, 6, 9; depth 2, one conv per level, no BatchNorm.
  auto plain = make_unet({{"depth", std::int64_t{2}},
                          {"channels", std::int64_t{4}},
                          {"growth", 1.5},
                          {"batch_norm", false},
                          {"convs_per_level", std::int64_t{1}}});
  auto params = plain->named_parameters();
  CHECK(params["encoder.2.convs.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{9, 6, 3, 3});
  CHECK(params["up.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{6, 9, 2, 2});
  CHECK(params["decoder.0.convs.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{6, 12, 3, 3});

  // Residual, depth 1, 4 channels: encoder 0 gives concat(image 1, conv 4) = 5 channels, the
  // bottleneck concat(5, conv 8) = 13; the decoder convolves concat(skip 5, up 4) = 9 to 4
  // and outputs concat(9, 4) = 13 channels into the head.
  auto residual = make_unet({{"depth", std::int64_t{1}},
                             {"channels", std::int64_t{4}},
                             {"residual", true},
                             {"batch_norm", false},
                             {"convs_per_level", std::int64_t{1}}});
  params = residual->named_parameters();
  CHECK(params["encoder.0.convs.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{4, 1, 3, 3});
  CHECK(params["encoder.1.convs.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{8, 5, 3, 3});
  CHECK(params["up.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{4, 13, 2, 2});
  CHECK(params["decoder.0.convs.0.conv.weight"].sizes().vec() == std::vector<std::int64_t>{4, 9, 3, 3});
  CHECK(params["head.weight"].sizes().vec() == std::vector<std::int64_t>{1, 13, 1, 1});

  // With BatchNorm the convolutions carry no bias; the BN layers are there instead.
  auto with_bn = make_unet({{"depth", std::int64_t{1}}, {"channels", std::int64_t{4}}});
  params = with_bn->named_parameters();
  CHECK(params.find("encoder.0.convs.0.conv.bias") == nullptr);
  CHECK(params.contains("encoder.0.convs.0.bn.weight"));
}

TEST_CASE("unet preset notebook_simple is the course notebook's Keras net", "[unet]") {
  auto model = make_unet({{"preset", std::string("notebook_simple")}});
  const std::vector<std::string> expected = {
      "encoder.0.convs.0.conv: conv3x3 1->64 stride 1 bias",
      "encoder.0.convs.0.act: relu",
      "encoder.1.convs.0.conv: conv3x3 64->128 stride 1 bias",
      "encoder.1.convs.0.act: relu",
      "encoder.2.convs.0.conv: conv3x3 128->256 stride 1 bias",
      "encoder.2.convs.0.act: relu",
      "down.0.pool: maxpool2",
      "down.1.pool: maxpool2",
      "up.0.upsample: upsample kNearest x2",
      "up.0.pad: zeropad left 0 right 1 top 0 bottom 1",
      "up.0.conv: conv2x2 256->128 stride 1 bias",
      "up.0.act: relu",
      "up.1.upsample: upsample kNearest x2",
      "up.1.pad: zeropad left 0 right 1 top 0 bottom 1",
      "up.1.conv: conv2x2 128->64 stride 1 bias",
      "up.1.act: relu",
      "decoder.0.convs.0.conv: conv3x3 256->128 stride 1 bias",
      "decoder.0.convs.0.act: relu",
      "decoder.1.convs.0.conv: conv3x3 128->64 stride 1 bias",
      "decoder.1.convs.0.act: relu",
      "dropout: dropout 0.5",
      "head: conv1x1 64->1 stride 1 bias",
  };
  CHECK(leaf_layers(*model) == expected);

  // Weights + biases, layer by layer (k*k*in*out + out):
  //   3*3*1*64 + 64 = 640         3*3*64*128 + 128 = 73,856    3*3*128*256 + 256 = 295,168
  //   2*2*256*128 + 128 = 131,200 3*3*256*128 + 128 = 295,040
  //   2*2*128*64 + 64 = 32,832    3*3*128*64 + 64 = 73,792     1*1*64*1 + 1 = 65
  CHECK(parameter_count(*model) == 640 + 73856 + 295168 + 131200 + 295040 + 32832 + 73792 + 65);
  CHECK(parameter_count(*model) == 902593);

  // Keras' initialisation: zero biases, Glorot-uniform kernels. For the first conv the
  // Glorot bound is sqrt(6 / (9 + 576)) = 0.101; PyTorch's default bound there is 1/3.
  for (const auto& item : model->named_parameters()) {
    if (item.key().find("bias") != std::string::npos) CHECK(item.value().abs().max().item<float>() == 0.0f);
  }
  const auto first = model->named_parameters()["encoder.0.convs.0.conv.weight"];
  CHECK(first.abs().max().item<double>() <= std::sqrt(6.0 / (9 + 576)) + 1e-6);

  // Keras' "same" 2x2 convolution after the zero pad keeps the size (H and W multiples of 4).
  CHECK(output_shape(*model, 2, 32, 48) == std::vector<std::int64_t>{2, 1, 32, 48});
  CHECK_THROWS_WITH(make_unet({{"preset", std::string("notebook_simple")}, {"depth", std::int64_t{3}}}),
                    Contains("preset = \"notebook_simple\" fixes the whole architecture") && Contains("depth = 3"));
}

TEST_CASE("unet refuses inputs it cannot reproduce at full size", "[unet]") {
  auto model = make_unet({{"depth", std::int64_t{3}}, {"channels", std::int64_t{4}}});
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 1, 24, 20})),
                    Contains("24x20") && Contains("not divisible by 2^depth = 8"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 3, 16, 16})), Contains("[batch, 1, height, width]"));
  CHECK_THROWS_AS(model->forward(torch::zeros({16, 16})), ConfigError);
}

TEST_CASE("unet learns a fixed batch: a few Adam steps lower the BCE", "[unet]") {
  torch::manual_seed(7);
  auto model = make_unet({{"depth", std::int64_t{2}}, {"channels", std::int64_t{8}}, {"convs_per_level", std::int64_t{1}}});
  model->train();
  // Bright squares on noise; the mask is the square.
  Batch batch;
  batch.masks = torch::zeros({4, 1, 32, 32});
  for (std::int64_t i = 0; i < 4; ++i) batch.masks[i].slice(1, 4 + 5 * i, 14 + 5 * i).slice(2, 8, 20).fill_(1.0);
  batch.images = 0.3 * torch::randn({4, 1, 32, 32}) + batch.masks;
  const auto& reg = test::plugins();
  auto bce = reg.make_loss("bce", reg.params_for(Kind::Loss, "bce"));
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 25; ++step) {
    adam.zero_grad();
    auto loss = bce->compute(model->forward(batch.images), batch);
    loss.backward();
    adam.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  INFO("BCE " << first << " -> " << last);
  CHECK(std::isfinite(last));
  CHECK(last < 0.5 * first);
}

// Not part of the suite (hidden tag): the numbers for the report.
TEST_CASE("unet timing and parameter table", "[.][unet-benchmark]") {
  const std::vector<std::pair<std::string, Given>> configs = {
      {"notebook_simple", {{"preset", std::string("notebook_simple")}}},
      {"defaults (depth 4, 32 ch, BN, 2 convs)", {}},
      {"defaults + residual", {{"residual", true}}},
      {"defaults + strided + transposed", {{"downsample", std::string("strided")}, {"upsample", std::string("transposed")}}},
  };
  for (const auto& [name, given] : configs) std::cout << name << ": " << parameter_count(*make_unet(given)) << " parameters\n";

  torch::manual_seed(0);
  auto model = make_unet({{"preset", std::string("notebook_simple")}});
  model->train();
  const auto images = torch::randn({16, 1, 128, 128});
  const auto masks = (torch::rand({16, 1, 128, 128}) > 0.8).to(torch::kFloat);
  auto step = [&] {
    model->zero_grad();
    auto logits = model->forward(images).mask_logits;
    torch::binary_cross_entropy_with_logits(logits, masks).backward();
  };
  step();  // warm-up (allocations)
  const int reps = 5;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::cout << "notebook_simple forward+backward, 16 x 1 x 128 x 128, CPU, " << torch::get_num_threads()
            << " threads: " << seconds << " s per batch\n";
}

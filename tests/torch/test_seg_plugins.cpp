// The first segmentation plugins, exercised through the plugin registry exactly as the host
// uses them: model resnet_seg, losses bce / jaccard / bce_jaccard, schedulers constant / cosine,
// metrics pixel_accuracy / mean_iou. Expected numbers are computed by hand in the comments.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <set>

#include "torch_helpers.h"
#include "chestlab/errors.h"
#include "chestlab/host/registry.h"

using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

// One registry for the whole file: discovering loads every plugin library of the build.
std::shared_ptr<Model> make_resnet(std::int64_t channels, std::int64_t depth, std::int64_t blocks,
                                   double bn_momentum = 0.1) {
  const auto& reg = test::plugins();
  return reg.make_model("resnet_seg", reg.params_for(Kind::Model, "resnet_seg",
                                                     {{"channels", channels},
                                                      {"depth", depth},
                                                      {"blocks", blocks},
                                                      {"bn_momentum", bn_momentum}}));
}

std::int64_t parameter_count(const torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::shared_ptr<Loss> make_loss(const std::string& name, const std::map<std::string, ParamValue>& given = {}) {
  const auto& reg = test::plugins();
  return reg.make_loss(name, reg.params_for(Kind::Loss, name, given));
}

std::shared_ptr<Scheduler> make_scheduler(const std::string& name,
                                          const std::map<std::string, ParamValue>& given = {}) {
  const auto& reg = test::plugins();
  return reg.make_scheduler(name, reg.params_for(Kind::Scheduler, name, given));
}

std::shared_ptr<Metric> make_metric(const std::string& name, const std::map<std::string, ParamValue>& given = {}) {
  const auto& reg = test::plugins();
  return reg.make_metric(name, reg.params_for(Kind::Metric, name, given));
}

// [n, 1, 2, 2] from row-major values of n 2x2 images.
torch::Tensor images_2x2(std::vector<float> values) {
  const auto n = static_cast<std::int64_t>(values.size() / 4);
  return torch::tensor(values).reshape({n, 1, 2, 2});
}

Batch mask_batch(const torch::Tensor& masks) {
  Batch batch;
  batch.images = torch::zeros_like(masks);
  batch.masks = masks;
  return batch;
}

ModelOutput logits_output(const torch::Tensor& logits) {
  ModelOutput out;
  out.mask_logits = logits;
  return out;
}

double loss_value(Loss& loss, const torch::Tensor& logits, const torch::Tensor& masks) {
  return loss.compute(logits_output(logits), mask_batch(masks)).item<double>();
}

double metric_value(Metric& metric, const torch::Tensor& probs, const torch::Tensor& masks) {
  metric.reset();
  Prediction prediction;
  prediction.mask_prob = probs;
  metric.update(prediction, mask_batch(masks));
  return metric.compute();
}

}  // namespace

// ---- model ------------------------------------------------------------------------------

TEST_CASE("resnet_seg is registered as a mask model with its source", "[resnet_seg]") {
  const ComponentInfo* info = test::plugins().find(Kind::Model, "resnet_seg");
  REQUIRE(info != nullptr);
  CHECK(info->output == OutputKind::Mask);
  CHECK(info->tags.at("source") == "Kaggle RSNA kernel (resnet-style segmentation)");
  auto params = test::plugins().params_for(Kind::Model, "resnet_seg");
  CHECK(params.integer("channels") == 32);
  CHECK(params.integer("depth") == 4);
  CHECK(params.integer("blocks") == 2);
  CHECK(params.real("bn_momentum") == Approx(0.1));
  CHECK_THROWS_AS(test::plugins().params_for(Kind::Model, "resnet_seg", {{"depth", std::int64_t{9}}}), ConfigError);
}

TEST_CASE("resnet_seg returns mask logits of the input size", "[resnet_seg]") {
  torch::NoGradGuard no_grad;
  struct Case { std::int64_t depth, height, width; };
  CHECK(test::plugins().find(Kind::Model, "resnet_seg")->output == OutputKind::Mask);
  for (const Case& c : {Case{1, 6, 10}, Case{2, 16, 16}, Case{3, 32, 24}, Case{4, 48, 16}}) {
    auto model = make_resnet(4, c.depth, 1);
    const auto out = model->forward(torch::randn({2, 1, c.height, c.width}));
    INFO("depth " << c.depth << ", input " << c.height << "x" << c.width);
    REQUIRE(out.mask_logits.defined());
    CHECK(out.mask_logits.sizes() == torch::IntArrayRef({2, 1, c.height, c.width}));
    CHECK(torch::isfinite(out.mask_logits).all().item<bool>());
  }
}

TEST_CASE("resnet_seg rejects inputs that are not multiples of 2^depth", "[resnet_seg]") {
  auto model = make_resnet(4, 3, 0);
  torch::NoGradGuard no_grad;
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 1, 20, 24})),
                    Contains("20x24") && Contains("not divisible by 2^depth = 8"));
  CHECK_THROWS_AS(model->forward(torch::zeros({1, 1, 20, 24})), ConfigError);
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 3, 16, 16})), Contains("[batch, 1, height, width]"));
  CHECK_NOTHROW(model->forward(torch::zeros({1, 1, 16, 24})));
}

TEST_CASE("resnet_seg parameter count matches the hand count", "[resnet_seg]") {
  // channels 2, depth 1, blocks 1:
  //   stem 3x3 1->2 no bias: 18; stage BN(2): 4, 1x1 2->4: 8;
  //   block on 4 channels: 2 x (BN 8 + 3x3 4->4 144) = 304; head BN(4) 8 + 1x1 4->1 4 + bias 1 = 13
  CHECK(parameter_count(*make_resnet(2, 1, 1)) == 18 + 4 + 8 + 304 + 13);  // 347
  // channels 4, depth 2, blocks 0:
  //   stem 36; stage 4->8: 8 + 32; stage 8->16: 16 + 128; head BN(16) 32 + 16 + 1
  CHECK(parameter_count(*make_resnet(4, 2, 0)) == 36 + 40 + 144 + 49);  // 269
  // The quickstart's channels 16, depth 3, blocks 1:
  //   stem 144; 16->32: 32 + 512, block(32) 2 x (64 + 9216); 32->64: 64 + 2048,
  //   block(64) 2 x (128 + 36864); 64->128: 128 + 8192, block(128) 2 x (256 + 147456);
  //   head 256 + 128 + 1
  CHECK(parameter_count(*make_resnet(16, 3, 1)) == 399473);
}

TEST_CASE("resnet_seg state_dict names follow the architecture", "[resnet_seg]") {
  auto model = make_resnet(2, 2, 2);
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  std::set<std::string> buffers;
  for (const auto& item : model->named_buffers()) buffers.insert(item.key());
  for (const char* expected :
       {"stem.weight", "stages.0.bn.weight", "stages.0.bn.bias", "stages.0.conv.weight",
        "stages.0.blocks.0.bn1.weight", "stages.0.blocks.0.conv1.weight", "stages.0.blocks.1.bn2.bias",
        "stages.1.blocks.1.conv2.weight", "head.bn.weight", "head.conv.weight", "head.conv.bias"}) {
    INFO(expected);
    CHECK(names.count(expected) == 1);
  }
  // The kernel's convolutions have no bias except the final logit layer.
  CHECK(names.count("stem.bias") == 0);
  CHECK(names.count("stages.0.conv.bias") == 0);
  CHECK(names.count("stages.2.bn.weight") == 0);
  CHECK(buffers.count("stages.1.bn.running_mean") == 1);
  CHECK(buffers.count("head.bn.running_var") == 1);
}

TEST_CASE("resnet_seg bn_momentum uses PyTorch's convention", "[resnet_seg]") {
  // running_mean starts at 0; one training step gives momentum * batch mean.
  torch::manual_seed(3);
  const double momentum = 0.3;
  auto model = make_resnet(2, 1, 0, momentum);
  model->train();
  const auto images = torch::randn({2, 1, 8, 8});
  torch::Tensor stem_out;
  {
    torch::NoGradGuard no_grad;
    stem_out = model->named_modules()["stem"]->as<torch::nn::Conv2dImpl>()->forward(images);
    model->forward(images);
  }
  const auto expected = momentum * stem_out.mean({0, 2, 3});
  const auto running = model->named_buffers()["stages.0.bn.running_mean"];
  CHECK(torch::allclose(running, expected, 1e-4, 1e-6));
}

TEST_CASE("resnet_seg trained with bce_jaccard lowers the loss on a fixed batch", "[resnet_seg][losses]") {
  torch::manual_seed(7);
  auto model = make_resnet(4, 2, 1);
  auto loss = make_loss("bce_jaccard");
  auto images = torch::randn({4, 1, 16, 16}) * 0.1;
  auto masks = torch::zeros({4, 1, 16, 16});
  masks.index_put_({torch::indexing::Slice(), 0, torch::indexing::Slice(4, 12), torch::indexing::Slice(4, 12)},
                   1.0);
  images = images + masks;  // learnable: the mask is visible in the image
  const Batch batch = mask_batch(masks);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-2));
  model->train();
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 15; ++step) {
    optimizer.zero_grad();
    auto value = loss->compute(model->forward(images), batch);
    value.backward();
    optimizer.step();
    (step == 0 ? first : last) = value.item<double>();
  }
  INFO("first " << first << ", last " << last);
  CHECK(last < 0.7 * first);
}

// ---- losses -----------------------------------------------------------------------------

TEST_CASE("losses are registered as mask losses", "[losses]") {
  for (const char* name : {"bce", "jaccard", "bce_jaccard"}) {
    const ComponentInfo* info = test::plugins().find(Kind::Loss, name);
    REQUIRE(info != nullptr);
    CHECK(to_string(info->accepts) == "mask");
  }
}

TEST_CASE("bce matches the hand-computed value on a 2x2 example", "[losses]") {
  const auto logits = images_2x2({2, -1, 0, 3});
  const auto masks = images_2x2({1, 0, 1, 0});
  // Per pixel: y=1 -> log(1+e^-x), y=0 -> log(1+e^x):
  //   log(1+e^-2) = 0.126928, log(1+e^-1) = 0.313262, log 2 = 0.693147, log(1+e^3) = 3.048587
  CHECK(loss_value(*make_loss("bce"), logits, masks) == Approx(1.0454811).epsilon(1e-6));
  // pos_weight 2 doubles the two positive terms: (2*0.126928 + 0.313262 + 2*0.693147 + 3.048587)/4
  CHECK(loss_value(*make_loss("bce", {{"pos_weight", 2.0}}), logits, masks) == Approx(1.2504999).epsilon(1e-6));
  // Saturated logits stay finite (the logits form, not log(sigmoid)).
  CHECK(std::isfinite(loss_value(*make_loss("bce"), images_2x2({200, -200, 200, -200}), masks)));
  CHECK_THROWS_AS(make_loss("bce", {{"pos_weight", 0.0}}), ConfigError);
}

TEST_CASE("jaccard: perfect, opposite and soft predictions", "[losses]") {
  auto jaccard = make_loss("jaccard");
  const auto masks = images_2x2({1, 0, 1, 0});
  // Perfect: I = 2, |A| + |B| - I = 2 -> 1 - 3/3 = 0.
  CHECK(loss_value(*jaccard, images_2x2({30, -30, 30, -30}), masks) == Approx(0.0).margin(1e-6));
  // Opposite: I = 0, union = 4 -> 1 - (0 + 1)/(4 + 1) = 0.8, not 1, because of the smoothing.
  CHECK(loss_value(*jaccard, images_2x2({-30, 30, -30, 30}), masks) == Approx(0.8).epsilon(1e-6));
  // smooth 0.5: 1 - 0.5/4.5
  CHECK(loss_value(*make_loss("jaccard", {{"smooth", 0.5}}), images_2x2({-30, 30, -30, 30}), masks) ==
        Approx(1.0 - 0.5 / 4.5).epsilon(1e-6));
  // Soft: p = sigmoid(2, -1, 0, 3) = (0.880797, 0.268941, 0.5, 0.952574); I = 1.380797,
  // |A| = 2.602312, union = 3.221515 -> 1 - 2.380797/4.221515 = 0.436033
  CHECK(loss_value(*jaccard, images_2x2({2, -1, 0, 3}), masks) == Approx(0.4360326).epsilon(1e-6));
}

TEST_CASE("jaccard: whole-batch IoU by default, per-image mean on request", "[losses]") {
  // Image 0 perfect (I 2, A 2, B 2); image 1 opposite with one true pixel (I 0, A 3, B 1).
  const auto logits = images_2x2({30, -30, 30, -30, -30, 30, 30, 30});
  const auto masks = images_2x2({1, 0, 1, 0, 1, 0, 0, 0});
  // Batch: I = 2, union = 5 + 3 - 2 = 6 -> 1 - 3/7
  CHECK(loss_value(*make_loss("jaccard"), logits, masks) == Approx(4.0 / 7.0).epsilon(1e-6));
  // Per image: (0 + (1 - 1/5)) / 2 = 0.4
  CHECK(loss_value(*make_loss("jaccard", {{"per_image", true}}), logits, masks) == Approx(0.4).epsilon(1e-6));
}

TEST_CASE("bce_jaccard is the weighted sum of bce and jaccard", "[losses]") {
  const auto logits = images_2x2({2, -1, 0, 3, 1, 1, -2, 0.5f});
  const auto masks = images_2x2({1, 0, 1, 0, 0, 1, 0, 0});
  const double bce = loss_value(*make_loss("bce"), logits, masks);
  const double jaccard = loss_value(*make_loss("jaccard"), logits, masks);
  CHECK(loss_value(*make_loss("bce_jaccard"), logits, masks) == Approx(0.5 * bce + 0.5 * jaccard).epsilon(1e-6));
  CHECK(loss_value(*make_loss("bce_jaccard", {{"bce_weight", 0.3}, {"jaccard_weight", 2.0}}), logits, masks) ==
        Approx(0.3 * bce + 2.0 * jaccard).epsilon(1e-6));
}

TEST_CASE("mask losses name what is missing", "[losses]") {
  auto loss = make_loss("bce_jaccard");
  Batch no_masks;
  no_masks.images = torch::zeros({1, 1, 2, 2});
  CHECK_THROWS_WITH(loss->compute(logits_output(torch::zeros({1, 1, 2, 2})), no_masks),
                    Contains("bce_jaccard") && Contains("ground-truth masks"));
  CHECK_THROWS_AS(loss->compute(ModelOutput{}, mask_batch(torch::zeros({1, 1, 2, 2}))), ConfigError);
  CHECK_THROWS_AS(loss->compute(logits_output(torch::zeros({1, 1, 4, 4})), mask_batch(torch::zeros({1, 1, 2, 2}))),
                  std::invalid_argument);
}

// ---- schedulers -------------------------------------------------------------------------

TEST_CASE("constant schedule keeps the base lr", "[schedulers]") {
  auto schedule = make_scheduler("constant");
  CHECK(schedule->unit() == StepUnit::Epoch);
  ScheduleState state;
  state.epochs = 5;
  state.base_lr = 3e-4;
  for (std::int64_t e = 0; e < 5; ++e) {
    state.epoch = e;
    CHECK(schedule->lr(state) == 3e-4);
  }
}

TEST_CASE("cosine schedule follows (cos(pi*epoch/epochs)+1)/2", "[schedulers]") {
  ScheduleState state;
  state.epochs = 10;
  state.base_lr = 1e-3;
  auto at = [&](Scheduler& s, std::int64_t epoch) {
    state.epoch = epoch;
    return s.lr(state);
  };
  auto cosine = make_scheduler("cosine");
  CHECK(cosine->unit() == StepUnit::Epoch);
  CHECK(at(*cosine, 0) == Approx(1e-3));
  CHECK(at(*cosine, 5) == Approx(0.5e-3));
  // cos(0.9 pi) = -0.9510565 -> 1e-3 * 0.0489435 / 2
  CHECK(at(*cosine, 9) == Approx(2.4471742e-5).epsilon(1e-6));

  auto floored = make_scheduler("cosine", {{"min_lr", 1e-4}});
  CHECK(at(*floored, 0) == Approx(1e-3));
  CHECK(at(*floored, 5) == Approx(1e-4 + 0.9e-3 * 0.5));
  CHECK(at(*floored, 9) == Approx(1.2202457e-4).epsilon(1e-6));

  state.base_lr = 1e-5;
  CHECK_THROWS_WITH(at(*floored, 0), Contains("min_lr"));
  CHECK_THROWS_AS(make_scheduler("cosine", {{"min_lr", -1.0}}), ConfigError);
}

// ---- metrics ----------------------------------------------------------------------------

TEST_CASE("metrics are registered as mask metrics where higher is better", "[metrics]") {
  for (const char* name : {"pixel_accuracy", "mean_iou"}) {
    const ComponentInfo* info = test::plugins().find(Kind::Metric, name);
    REQUIRE(info != nullptr);
    CHECK(to_string(info->accepts) == "mask");
    CHECK(info->higher_is_better);
  }
  CHECK_THROWS_AS(make_metric("mean_iou", {{"empty_score", 1.5}}), ConfigError);
  CHECK_THROWS_AS(make_metric("pixel_accuracy", {{"threshold", -0.1}}), ConfigError);
}

TEST_CASE("pixel_accuracy on hand-made masks", "[metrics]") {
  const auto probs = images_2x2({0.9f, 0.4f, 0.5f, 0.1f});
  const auto truth = images_2x2({1, 1, 0, 0});
  // Threshold 0.5: predicted (1, 0, 1, 0) -> pixels 0 and 3 right -> 2/4
  auto accuracy = make_metric("pixel_accuracy");
  CHECK(metric_value(*accuracy, probs, truth) == Approx(0.5));
  // Threshold 0.3: predicted (1, 1, 1, 0) -> 3/4
  CHECK(metric_value(*make_metric("pixel_accuracy", {{"threshold", 0.3}}), probs, truth) == Approx(0.75));

  // Accumulates over updates: 2/4 then 4/4 -> 6/8.
  Prediction second;
  second.mask_prob = images_2x2({0.0f, 0.0f, 0.7f, 0.2f});
  accuracy->update(second, mask_batch(images_2x2({0, 0, 1, 0})));
  CHECK(accuracy->compute() == Approx(0.75));
  accuracy->reset();
  CHECK(std::isnan(accuracy->compute()));
}

TEST_CASE("mean_iou on hand-made masks, including both-empty images", "[metrics]") {
  // A: predicted (1,1,0,0) vs truth (1,0,1,0) -> 1/3; B: both empty; C: empty prediction, one true pixel -> 0.
  const auto probs = images_2x2({0.8f, 0.6f, 0.2f, 0.1f, 0.1f, 0.2f, 0.3f, 0.4f, 0.0f, 0.0f, 0.0f, 0.0f});
  const auto truth = images_2x2({1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  CHECK(metric_value(*make_metric("mean_iou"), probs, truth) == Approx((1.0 / 3.0 + 1.0 + 0.0) / 3.0));
  CHECK(metric_value(*make_metric("mean_iou", {{"empty_score", 0.0}}), probs, truth) == Approx(1.0 / 9.0));
  CHECK(metric_value(*make_metric("mean_iou", {{"empty_score", 0.25}}), probs, truth) ==
        Approx((1.0 / 3.0 + 0.25) / 3.0));
  // Threshold 0.15 adds pixels to A (third: 0.2) -> I 2, U 3 -> 2/3; B now predicts (0,1,1,1) -> 0.
  CHECK(metric_value(*make_metric("mean_iou", {{"threshold", 0.15}}), probs, truth) ==
        Approx((2.0 / 3.0 + 0.0 + 0.0) / 3.0));
}

TEST_CASE("mean_iou of an all-background prediction is the fraction of empty images", "[metrics]") {
  // Three negative images and one with foreground, predicted background everywhere: 3/4
  // (the rule the metric's documentation states for the quickstart's baseline).
  const auto truth = images_2x2({0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0});
  const auto background = torch::zeros_like(truth);
  CHECK(metric_value(*make_metric("mean_iou"), background, truth) == Approx(0.75));
  CHECK(metric_value(*make_metric("mean_iou", {{"empty_score", 0.5}}), background, truth) == Approx(0.375));
  CHECK(metric_value(*make_metric("pixel_accuracy"), background, truth) == Approx(14.0 / 16.0));
}

// The step-wise schedulers (step_exponential, step, plateau) and the mask losses for class
// imbalance (dice, focal), exercised through the plugin registry as the host uses them. Expected
// values are computed by hand in the comments.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <memory>

#include "torch_helpers.h"
#include "chestlab/errors.h"
#include "chestlab/host/registry.h"

using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

std::shared_ptr<Scheduler> make_scheduler(const std::string& name, const std::map<std::string, ParamValue>& given = {}) {
  const auto& reg = test::plugins();
  return reg.make_scheduler(name, reg.params_for(Kind::Scheduler, name, given));
}

std::shared_ptr<Loss> make_loss(const std::string& name, const std::map<std::string, ParamValue>& given = {}) {
  const auto& reg = test::plugins();
  return reg.make_loss(name, reg.params_for(Kind::Loss, name, given));
}

ScheduleState epoch_state(std::int64_t epoch, double base_lr) {
  ScheduleState s;
  s.epoch = epoch;
  s.epochs = 100;
  s.base_lr = base_lr;
  return s;
}

// lr() for epochs 0 .. n-1, feeding `monitored[e]` to observe() after epoch e, as the host does.
std::vector<double> run_epochs(Scheduler& scheduler, const std::vector<double>& monitored, double base_lr,
                               std::int64_t first_epoch = 0) {
  std::vector<double> rates;
  for (std::size_t i = 0; i < monitored.size(); ++i) {
    const auto epoch = first_epoch + static_cast<std::int64_t>(i);
    rates.push_back(scheduler.lr(epoch_state(epoch, base_lr)));
    scheduler.observe(epoch, monitored[i]);
  }
  return rates;
}

void require_rates(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    INFO("epoch index " << i);
    CHECK(actual[i] == Approx(expected[i]).epsilon(1e-12));
  }
}

torch::Tensor images_2x2(std::vector<float> values) {
  const auto n = static_cast<std::int64_t>(values.size() / 4);
  return torch::tensor(values).reshape({n, 1, 2, 2});
}

double loss_value(Loss& loss, const torch::Tensor& logits, const torch::Tensor& masks) {
  ModelOutput out;
  out.mask_logits = logits;
  Batch batch;
  batch.images = torch::zeros_like(masks);
  batch.masks = masks;
  return loss.compute(out, batch).item<double>();
}

const float kLog3 = static_cast<float>(std::log(3.0));  // sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25

}  // namespace

TEST_CASE("step_exponential reproduces the notebook's Keras LearningRateScheduler", "[schedulers]") {
  auto s = make_scheduler("step_exponential");  // hold_epochs 20, gamma 0.1
  // Keras calls `lr if epoch < 20 else lr * 0.1` with the current rate at every epoch start.
  double keras_lr = 1e-3;
  std::vector<double> keras, ours;
  for (std::int64_t epoch = 0; epoch < 24; ++epoch) {
    keras_lr = epoch < 20 ? keras_lr : keras_lr * 0.1;
    keras.push_back(keras_lr);
    ours.push_back(s->lr(epoch_state(epoch, 1e-3)));
  }
  require_rates(ours, keras);
  std::vector<double> expected(20, 1e-3);
  for (double v : {1e-4, 1e-5, 1e-6, 1e-7}) expected.push_back(v);
  require_rates(ours, expected);

  // hold_epochs = 0 decays from the first epoch (Keras: `epoch < 0` is never true).
  auto immediate = make_scheduler("step_exponential", {{"hold_epochs", std::int64_t{0}}, {"gamma", 0.5}});
  CHECK(immediate->lr(epoch_state(0, 1.0)) == Approx(0.5));
  CHECK(immediate->lr(epoch_state(2, 1.0)) == Approx(0.125));
  CHECK_THROWS_AS(make_scheduler("step_exponential", {{"gamma", 0.0}}), ConfigError);
}

TEST_CASE("step is PyTorch's StepLR and requires step_size", "[schedulers]") {
  auto s = make_scheduler("step", {{"step_size", std::int64_t{3}}, {"gamma", 0.5}});
  std::vector<double> rates;
  for (std::int64_t epoch = 0; epoch < 10; ++epoch) rates.push_back(s->lr(epoch_state(epoch, 0.1)));
  require_rates(rates, {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125});
  CHECK_THROWS_AS(test::plugins().params_for(Kind::Scheduler, "step", {}), ConfigError);
}

namespace {

// mode min, factor 0.5, patience 1, abs threshold 0, cooldown 1, min_lr 0.3, base lr 1.
// Trace (v = monitored value after the epoch; bad = bad epochs; cd = cooldown counter):
//   e0 1.0  best 1.0, bad 0                    -> lr stays 1
//   e1 1.0  not better (abs, threshold 0), bad 1
//   e2 1.1  bad 2 > 1: lr 0.5, cd 1, bad 0     -> epoch 3 runs at 0.5
//   e3 1.2  bad 1, in cooldown: cd 0, bad 0
//   e4 1.2  bad 1
//   e5 0.9  better: best 0.9, bad 0
//   e6 0.95 bad 1
//   e7 0.95 bad 2: lr max(0.25, 0.3) = 0.3     -> epoch 8 runs at 0.3
//   e8 1.0  bad 1, cooldown: cd 0, bad 0
//   e9 1.0  bad 1
//   e10 1.0 bad 2: max(0.15, 0.3) = 0.3, no change (0.3 - 0.3 <= eps)
//   e11 1.0 bad 1
const std::vector<double> kMonitored = {1.0, 1.0, 1.1, 1.2, 1.2, 0.9, 0.95, 0.95, 1.0, 1.0, 1.0, 1.0};
const std::vector<double> kExpectedRates = {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3};

std::shared_ptr<Scheduler> traced_plateau() {
  return make_scheduler("plateau", {{"mode", std::string("min")},
                                    {"factor", 0.5},
                                    {"patience", std::int64_t{1}},
                                    {"threshold", 0.0},
                                    {"threshold_mode", std::string("abs")},
                                    {"cooldown", std::int64_t{1}},
                                    {"min_lr", 0.3}});
}

}  // namespace

TEST_CASE("plateau follows ReduceLROnPlateau with patience, cooldown and min_lr", "[schedulers]") {
  auto s = traced_plateau();
  require_rates(run_epochs(*s, kMonitored, 1.0), kExpectedRates);
}

TEST_CASE("plateau in max mode with a relative threshold", "[schedulers]") {
  // patience 0, factor 0.1, rel threshold 0.1: an improvement must exceed best * 1.1.
  //   e0 1.0  best 1.0
  //   e1 1.05 not > 1.1: bad 1 > 0 -> epoch 2 runs at 0.1
  //   e2 1.2  > 1.1: best 1.2
  //   e3 1.3  not > 1.32: reduce   -> epoch 4 runs at 0.01
  //   e4 NaN  never better: reduce -> epoch 5 runs at 0.001
  auto s = make_scheduler("plateau", {{"mode", std::string("max")}, {"patience", std::int64_t{0}}, {"threshold", 0.1}});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  require_rates(run_epochs(*s, {1.0, 1.05, 1.2, 1.3, nan, 0.0}, 1.0), {1.0, 1.0, 0.1, 0.1, 0.01, 0.001});
  // PyTorch refuses factor >= 1.
  CHECK_THROWS_AS(make_scheduler("plateau", {{"factor", 1.0}}), ConfigError);
}

TEST_CASE("plateau state survives save and load mid-way, also during a cooldown", "[schedulers]") {
  for (std::size_t split : {std::size_t{0}, std::size_t{3}, std::size_t{5}, std::size_t{8}}) {
    INFO("resumed after " << split << " epochs");
    auto first = traced_plateau();
    const std::vector<double> head(kMonitored.begin(), kMonitored.begin() + static_cast<long>(split));
    const std::vector<double> tail(kMonitored.begin() + static_cast<long>(split), kMonitored.end());
    auto rates = run_epochs(*first, head, 1.0);
    const std::string state = first->save_state();
    if (split == 3) CHECK_THAT(state, Contains("cooldown_counter=1"));

    auto resumed = traced_plateau();
    resumed->load_state(state);
    // Once restored, the rate comes from the state, not from a (possibly different) base lr.
    const double base_lr = split == 0 ? 1.0 : 123.0;
    const auto continued = run_epochs(*resumed, tail, base_lr, static_cast<std::int64_t>(split));
    rates.insert(rates.end(), continued.begin(), continued.end());
    require_rates(rates, kExpectedRates);
    CHECK(resumed->save_state() == [&] {
      auto uninterrupted = traced_plateau();
      run_epochs(*uninterrupted, kMonitored, 1.0);
      return uninterrupted->save_state();
    }());
  }
}

TEST_CASE("plateau refuses a malformed saved state", "[schedulers]") {
  auto s = traced_plateau();
  CHECK_THROWS_WITH(s->load_state("plateau/1 lr=0.1 best=abc bad_epochs=0 cooldown_counter=0"),
                    Contains("best='abc' is not a number"));
  CHECK_THROWS_WITH(s->load_state("plateau/1 lr=0.1 best=1 bad_epochs=0"), Contains("'cooldown_counter' is missing"));
  CHECK_THROWS_WITH(s->load_state("cosine"), Contains("does not start with 'plateau/1'"));
}

TEST_CASE("dice loss matches hand-computed values", "[losses]") {
  // Image A: p = [0.5, 0.75, 0.25, 0.5], t = [1, 1, 0, 0]: I = 1.25, |P| = 2, |T| = 2.
  // Image B: p = 0.5 everywhere, t = 0:                   I = 0,    |P| = 2, |T| = 0.
  const auto logits = images_2x2({0, kLog3, -kLog3, 0, 0, 0, 0, 0});
  const auto masks = images_2x2({1, 1, 0, 0, 0, 0, 0, 0});
  auto batch_dice = make_loss("dice");  // smooth 1
  // Whole batch: 1 - (2 * 1.25 + 1) / (4 + 2 + 1) = 0.5
  CHECK(loss_value(*batch_dice, logits, masks) == Approx(0.5));
  // Per image: A 1 - 3.5 / 5 = 0.3, B 1 - 1 / 3 = 2/3; mean 0.48333...
  auto per_image = make_loss("dice", {{"per_image", true}});
  CHECK(loss_value(*per_image, logits, masks) == Approx((0.3 + 2.0 / 3.0) / 2));
  // Image A alone with smooth 0.5: 1 - 3 / 4.5
  auto smooth_half = make_loss("dice", {{"smooth", 0.5}});
  CHECK(loss_value(*smooth_half, logits.slice(0, 0, 1), masks.slice(0, 0, 1)) == Approx(1.0 - 3.0 / 4.5));
  CHECK_THROWS_AS(make_loss("dice", {{"smooth", 0.0}}), ConfigError);
  CHECK(to_string(test::plugins().find(Kind::Loss, "dice")->accepts) == "mask");
}

TEST_CASE("focal loss matches the RetinaNet definition", "[losses]") {
  // p = [0.5, 0.75, 0.25, 0.5], t = [1, 1, 0, 0], alpha 0.25, gamma 2:
  //   t=1, p=0.5:   0.25 * 0.5^2  * ln 2
  //   t=1, p=0.75:  0.25 * 0.25^2 * ln(4/3)
  //   t=0, p=0.25:  0.75 * 0.25^2 * ln(4/3)      (p_t = 0.75)
  //   t=0, p=0.5:   0.75 * 0.5^2  * ln 2
  // mean = (0.25 ln 2 + 0.0625 ln(4/3)) / 4
  const auto logits = images_2x2({0, kLog3, -kLog3, 0});
  const auto masks = images_2x2({1, 1, 0, 0});
  auto focal = make_loss("focal");
  CHECK(loss_value(*focal, logits, masks) == Approx((0.25 * std::log(2.0) + 0.0625 * std::log(4.0 / 3.0)) / 4));
  CHECK(to_string(test::plugins().find(Kind::Loss, "focal")->accepts) == "mask");

  SECTION("gamma 0 and alpha 0.5 is half the binary cross-entropy") {
    auto half_bce = make_loss("focal", {{"alpha", 0.5}, {"gamma", 0.0}});
    auto bce = make_loss("bce");
    const auto random_logits = torch::randn({2, 1, 4, 4});
    const auto random_masks = (torch::rand({2, 1, 4, 4}) > 0.5).to(torch::kFloat);
    CHECK(loss_value(*half_bce, random_logits, random_masks) ==
          Approx(0.5 * loss_value(*bce, random_logits, random_masks)).epsilon(1e-5));
  }

  SECTION("value and gradient stay finite for saturated logits, also for gamma < 1") {
    // t=1, x=-200: 0.25 * 1 * 200; t=0, x=200: 0.75 * 1 * 200; the two others ~0. Mean 50.
    auto focal_half = make_loss("focal", {{"gamma", 0.5}});
    auto saturated = images_2x2({200, -200, 200, -200}).requires_grad_(true);
    ModelOutput out;
    out.mask_logits = saturated;
    Batch batch;
    batch.images = torch::zeros({1, 1, 2, 2});
    batch.masks = images_2x2({1, 1, 0, 0});
    auto value = focal_half->compute(out, batch);
    value.backward();
    CHECK(value.item<double>() == Approx(50.0));
    CHECK(torch::isfinite(saturated.grad()).all().item<bool>());
  }

  SECTION("a batch without masks is refused") {
    ModelOutput out;
    out.mask_logits = logits;
    Batch batch;
    batch.images = torch::zeros({1, 1, 2, 2});
    CHECK_THROWS_AS(focal->compute(out, batch), ConfigError);
  }
}

TEST_CASE("strict bounds and rules across parameters are checked before a component is made", "[schedulers][losses]") {
  const auto& reg = test::plugins();
  CHECK_THROWS_WITH(reg.params_for(Kind::Scheduler, "plateau", {{"factor", 1.0}}),
                    "scheduler 'plateau': factor: expected float in [0, 1), got 1.0");
  CHECK_THROWS_WITH(reg.params_for(Kind::Scheduler, "step_exponential", {{"gamma", 0.0}}),
                    "scheduler 'step_exponential': gamma: expected float > 0, got 0.0");
  CHECK_THROWS_WITH(reg.params_for(Kind::Loss, "retinanet_focal", {{"bg_iou", 0.6}, {"fg_iou", 0.5}}),
                    "loss 'retinanet_focal': bg_iou: bg_iou (0.6) must not exceed fg_iou (0.5)");
  CHECK(reg.params_for(Kind::Loss, "retinanet_focal", {{"bg_iou", 0.5}, {"fg_iou", 0.5}}).real("bg_iou") == 0.5);
}

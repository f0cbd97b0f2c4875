// The dice metric through the plugin registry: hand-made masks whose values are worked out in
// the comments and recomputed by reference_dice (plain loops, no LibTorch), the empty cases,
// the threshold, averaging over images across update() calls, and Dice = 2 IoU / (1 + IoU)
// per image against the mean_iou plugin.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "torch_helpers.h"
#include "chestlab/errors.h"
#include "chestlab/host/registry.h"

using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

using Given = std::map<std::string, ParamValue>;

std::shared_ptr<Metric> make_metric(const std::string& name, const Given& given = {}) {
  const auto& reg = test::plugins();
  return reg.make_metric(name, reg.params_for(Kind::Metric, name, given));
}

// [n, 1, 2, 2] from row-major values of n 2x2 images.
torch::Tensor images_2x2(const std::vector<float>& values) {
  const auto n = static_cast<std::int64_t>(values.size() / 4);
  return torch::tensor(values).reshape({n, 1, 2, 2});
}

void update(Metric& metric, const torch::Tensor& probs, const torch::Tensor& masks) {
  Prediction prediction;
  prediction.mask_prob = probs;
  Batch batch;
  batch.images = torch::zeros_like(masks);
  batch.masks = masks;
  metric.update(prediction, batch);
}

double metric_value(Metric& metric, const torch::Tensor& probs, const torch::Tensor& masks) {
  metric.reset();
  update(metric, probs, masks);
  return metric.compute();
}

// The definition, written out independently of the plugin: for each image of `pixels`
// pixels, 2 |P.T| / (|P| + |T|) with P = prob >= threshold and T = mask >= 0.5, empty_score
// when |P| + |T| = 0; the mean over images.
double reference_dice(const std::vector<float>& probs, const std::vector<float>& masks, std::size_t pixels,
                      double threshold = 0.5, double empty_score = 1.0) {
  const std::size_t images = probs.size() / pixels;
  double sum = 0.0;
  for (std::size_t i = 0; i < images; ++i) {
    double both = 0, predicted = 0, truth = 0;
    for (std::size_t k = i * pixels; k < (i + 1) * pixels; ++k) {
      const bool p = probs[k] >= threshold;
      const bool t = masks[k] >= 0.5f;
      both += (p && t) ? 1 : 0;
      predicted += p ? 1 : 0;
      truth += t ? 1 : 0;
    }
    sum += predicted + truth == 0 ? empty_score : 2.0 * both / (predicted + truth);
  }
  return sum / static_cast<double>(images);
}

std::vector<float> values(const torch::Tensor& t) {
  const auto c = t.contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

TEST_CASE("dice is registered as a mask metric where higher is better, beside the dice loss", "[dice][metrics]") {
  const ComponentInfo* metric = test::plugins().find(Kind::Metric, "dice");
  REQUIRE(metric != nullptr);
  CHECK(to_string(metric->accepts) == "mask");
  CHECK(metric->higher_is_better);
  // The same name as a loss: kinds are separate namespaces in the registry.
  const ComponentInfo* loss = test::plugins().find(Kind::Loss, "dice");
  REQUIRE(loss != nullptr);
  CHECK(loss != metric);
  CHECK(make_metric("dice") != nullptr);

  CHECK_THROWS_AS(make_metric("dice", {{"empty_score", 1.5}}), ConfigError);
  CHECK_THROWS_AS(make_metric("dice", {{"threshold", -0.1}}), ConfigError);
  CHECK_THROWS_AS(make_metric("dice", {{"smooth", 1.0}}), ConfigError);  // the loss's parameter, not the metric's
}

TEST_CASE("dice on hand-made masks: partial overlap, empty prediction, empty truth", "[dice][metrics]") {
  // A: predicted (1,1,0,0) vs truth (1,0,1,0): 2*1 / (2+2) = 1/2.
  // B: predicted (1,1,1,0) vs truth (0,1,1,1): 2*2 / (3+3) = 2/3.
  // C: empty prediction, one true pixel: 0 / (0+1) = 0.
  // D: one predicted pixel, empty truth: 0 / (1+0) = 0.
  // E: prediction == truth (1,0,0,1): 2*2 / (2+2) = 1.
  const std::vector<float> probs = {0.8f, 0.6f, 0.2f, 0.1f, 0.9f, 0.5f, 0.7f, 0.0f, 0.0f, 0.1f,
                                    0.2f, 0.3f, 0.0f, 0.0f, 0.99f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f};
  const std::vector<float> truth = {1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1};
  const double expected = (0.5 + 2.0 / 3.0 + 0.0 + 0.0 + 1.0) / 5.0;
  REQUIRE(reference_dice(probs, truth, 4) == Approx(expected));
  CHECK(metric_value(*make_metric("dice"), images_2x2(probs), images_2x2(truth)) == Approx(expected));

  // One image at a time, each against the hand value.
  const std::vector<double> each = {0.5, 2.0 / 3.0, 0.0, 0.0, 1.0};
  for (std::size_t i = 0; i < each.size(); ++i) {
    const std::vector<float> p(probs.begin() + 4 * i, probs.begin() + 4 * (i + 1));
    const std::vector<float> t(truth.begin() + 4 * i, truth.begin() + 4 * (i + 1));
    CHECK(metric_value(*make_metric("dice"), images_2x2(p), images_2x2(t)) == Approx(each[i]));
  }
}

TEST_CASE("dice of images empty in both prediction and truth is empty_score", "[dice][metrics]") {
  // A: predicted (1,1,0,0) vs truth (1,0,1,0) -> 1/2; B: both empty -> empty_score;
  // C: empty prediction, one true pixel -> 0.
  const std::vector<float> probs = {0.8f, 0.6f, 0.2f, 0.1f, 0.1f, 0.2f, 0.3f, 0.4f, 0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> truth = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0};
  for (double empty_score : {1.0, 0.0, 0.25}) {
    CAPTURE(empty_score);
    const double expected = (0.5 + empty_score + 0.0) / 3.0;
    REQUIRE(reference_dice(probs, truth, 4, 0.5, empty_score) == Approx(expected));
    CHECK(metric_value(*make_metric("dice", {{"empty_score", empty_score}}), images_2x2(probs), images_2x2(truth)) ==
          Approx(expected));
  }
  // The default is 1: a batch of only empty images, predicted empty, is perfect.
  const auto empty = torch::zeros({4, 1, 2, 2});
  CHECK(metric_value(*make_metric("dice"), empty, empty) == Approx(1.0));
  CHECK(metric_value(*make_metric("dice", {{"empty_score", 0.0}}), empty, empty) == Approx(0.0));
}

TEST_CASE("dice threshold: probabilities >= threshold are foreground", "[dice][metrics]") {
  const std::vector<float> probs = {0.8f, 0.6f, 0.2f, 0.1f, 0.1f, 0.2f, 0.3f, 0.4f, 0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> truth = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0};
  // Threshold 0.15: A predicts (1,1,1,0) vs (1,0,1,0) -> 2*2 / (3+2) = 4/5; B predicts (0,1,1,1)
  // on an empty truth -> 0; C still empty -> 0.
  const double at_015 = (0.8 + 0.0 + 0.0) / 3.0;
  REQUIRE(reference_dice(probs, truth, 4, 0.15) == Approx(at_015));
  CHECK(metric_value(*make_metric("dice", {{"threshold", 0.15}}), images_2x2(probs), images_2x2(truth)) ==
        Approx(at_015));
  // Threshold 0.7: A predicts (1,0,0,0) -> 2*1 / (1+2) = 2/3; B empty/empty -> 1; C -> 0.
  const double at_07 = (2.0 / 3.0 + 1.0 + 0.0) / 3.0;
  REQUIRE(reference_dice(probs, truth, 4, 0.7) == Approx(at_07));
  CHECK(metric_value(*make_metric("dice", {{"threshold", 0.7}}), images_2x2(probs), images_2x2(truth)) ==
        Approx(at_07));
  // A probability equal to the threshold is foreground: 0.6 at threshold 0.6 keeps A at (1,1,0,0).
  CHECK(metric_value(*make_metric("dice", {{"threshold", 0.6}}), images_2x2(probs), images_2x2(truth)) ==
        Approx((0.5 + 1.0 + 0.0) / 3.0));
  // Soft masks: a mask value >= 0.5 is true foreground (like mean_iou).
  CHECK(metric_value(*make_metric("dice"), images_2x2({0.9f, 0.9f, 0.0f, 0.0f}), images_2x2({0.5f, 0.49f, 0, 0})) ==
        Approx(2.0 / 3.0));
}

TEST_CASE("dice averages over images across update calls, not over batches", "[dice][metrics]") {
  auto dice = make_metric("dice");
  dice->reset();
  CHECK(std::isnan(dice->compute()));
  // Batch 1 (three images): 1/2, 1 (both empty), 0.
  update(*dice, images_2x2({0.8f, 0.6f, 0.2f, 0.1f, 0.1f, 0.2f, 0.3f, 0.4f, 0.0f, 0.0f, 0.0f, 0.0f}),
         images_2x2({1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0}));
  CHECK(dice->compute() == Approx(1.5 / 3.0));
  // Batch 2 (one image): predicted (0,0,1,1) vs truth (0,0,1,0) -> 2*1 / (2+1) = 2/3.
  update(*dice, images_2x2({0.0f, 0.0f, 0.7f, 0.9f}), images_2x2({0, 0, 1, 0}));
  // Mean over the four images; the mean of the two batch means would be (1/2 + 2/3) / 2.
  const double expected = (0.5 + 1.0 + 0.0 + 2.0 / 3.0) / 4.0;
  CHECK(dice->compute() == Approx(expected));
  CHECK(dice->compute() != Approx((0.5 + 2.0 / 3.0) / 2.0));
  dice->reset();
  CHECK(std::isnan(dice->compute()));
  // After reset, only what follows counts.
  update(*dice, images_2x2({0.0f, 0.0f, 0.7f, 0.9f}), images_2x2({0, 0, 1, 0}));
  CHECK(dice->compute() == Approx(2.0 / 3.0));
}

TEST_CASE("dice matches the reference on random masks, over several batches", "[dice][metrics]") {
  std::mt19937 rng(20240501);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (double threshold : {0.5, 0.3, 0.9}) {
    for (double empty_score : {1.0, 0.0}) {
      CAPTURE(threshold, empty_score);
      auto dice = make_metric("dice", {{"threshold", threshold}, {"empty_score", empty_score}});
      dice->reset();
      std::vector<float> all_probs, all_truth;
      for (int b = 0; b < 4; ++b) {
        const std::int64_t n = 1 + b, h = 6, w = 5;
        std::vector<float> probs(n * h * w), truth(n * h * w);
        for (std::int64_t i = 0; i < n; ++i) {
          // Per image, a foreground density from none to dense, so that empty images occur.
          const float density = (i + b) % 3 == 0 ? 0.0f : uniform(rng);
          const float predicted = (i + 2 * b) % 4 == 0 ? 0.0f : uniform(rng);
          for (std::int64_t k = i * h * w; k < (i + 1) * h * w; ++k) {
            truth[k] = uniform(rng) < density ? 1.0f : 0.0f;
            probs[k] = uniform(rng) * predicted;
          }
        }
        update(*dice, torch::tensor(probs).reshape({n, 1, h, w}), torch::tensor(truth).reshape({n, 1, h, w}));
        all_probs.insert(all_probs.end(), probs.begin(), probs.end());
        all_truth.insert(all_truth.end(), truth.begin(), truth.end());
      }
      CHECK(dice->compute() ==
            Approx(reference_dice(all_probs, all_truth, 6 * 5, threshold, empty_score)).epsilon(1e-12));
    }
  }
}

TEST_CASE("per image, dice = 2 IoU / (1 + IoU) of the mean_iou plugin", "[dice][metrics]") {
  torch::manual_seed(7);
  for (double threshold : {0.5, 0.2}) {
    for (double empty_score : {1.0, 0.0, 0.4}) {
      CAPTURE(threshold, empty_score);
      const Given given = {{"threshold", threshold}, {"empty_score", empty_score}};
      auto dice = make_metric("dice", given);
      auto iou = make_metric("mean_iou", given);
      int both_empty = 0;
      for (int i = 0; i < 60; ++i) {
        CAPTURE(i);
        // Batch of one image; every fifth has an empty truth, every seventh an empty prediction.
        const double density = i % 5 == 0 ? 0.0 : torch::rand({1}).item<double>();
        const auto truth = (torch::rand({1, 1, 8, 8}) < density).to(torch::kFloat32);
        auto probs = torch::rand({1, 1, 8, 8});
        if (i % 7 == 0) probs = probs * (threshold * 0.99);
        const double d = metric_value(*dice, probs, truth);
        const double j = metric_value(*iou, probs, truth);
        const bool empty_truth = truth.sum().item<double>() == 0;
        const bool empty_prediction = (probs >= threshold).sum().item<std::int64_t>() == 0;
        if (empty_truth && empty_prediction) {
          // Both empty: 0/0 in both metrics, both give empty_score.
          ++both_empty;
          CHECK(d == Approx(empty_score));
          CHECK(j == Approx(empty_score));
        } else {
          CHECK(d == Approx(2.0 * j / (1.0 + j)).epsilon(1e-12));
        }
        CHECK(d >= j - 1e-12);
        CHECK(d == Approx(reference_dice(values(probs), values(truth), 64, threshold, empty_score)).epsilon(1e-12));
      }
      CHECK(both_empty >= 2);  // i = 0 and 35 at least
    }
  }
}

TEST_CASE("dice names what is missing", "[dice][metrics]") {
  auto dice = make_metric("dice");
  Prediction prediction;  // no mask_prob
  Batch batch;
  batch.images = torch::zeros({1, 1, 2, 2});
  batch.masks = torch::zeros({1, 1, 2, 2});
  CHECK_THROWS_WITH(dice->update(prediction, batch), Contains("dice"));
  prediction.mask_prob = torch::zeros({1, 1, 2, 2});
  batch.masks = torch::Tensor();
  CHECK_THROWS_WITH(dice->update(prediction, batch), Contains("dice"));
  batch.masks = torch::zeros({1, 1, 2, 3});
  CHECK_THROWS(dice->update(prediction, batch));
}

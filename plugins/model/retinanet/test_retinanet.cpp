// RetinaNet: the SDK's box operations (anchors, matching, encoding, NMS against a brute-force
// reference, focal loss by hand), the retinanet model and retinanet_focal loss through the
// plugin registry (shapes for several depths and sizes, predictions, training lowers the loss,
// overfitting a few images to rsna_map > 0.5), the box/mask pairing check, and the small
// experiment end to end on a synthetic RSNA corpus.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "torch_helpers.h"
#include "chestlab/detection/ops.h"
#include "chestlab/errors.h"
#include "chestlab/host/registry.h"
#include "chestlab/engine/runfile.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;
namespace det = chestlab::detection;
using Catch::Matchers::Contains;

namespace {

using Given = std::map<std::string, ParamValue>;

std::shared_ptr<Model> make_retinanet(const Given& given) {
  return test::plugins().make_model("retinanet", test::plugins().params_for(Kind::Model, "retinanet", given), ModelContext{});
}

std::shared_ptr<Loss> make_loss(const Given& given = {}) {
  return test::plugins().make_loss("retinanet_focal", test::plugins().params_for(Kind::Loss, "retinanet_focal", given));
}

// A small, fast configuration: this checks the wiring, not the recipe.
Given tiny(std::int64_t depth) {
  return {{"depth", depth}, {"width", std::int64_t{8}}, {"fpn_channels", std::int64_t{16}},
          {"head_convs", std::int64_t{1}}, {"sizes", std::vector<double>{12, 24, 48, 96, 192}}};
}

// Feature size after k stride-2 convolutions or pools of "same" padding: ceil halving.
std::int64_t halved(std::int64_t size, int times) {
  for (int i = 0; i < times; ++i) size = (size + 1) / 2;
  return size;
}

std::int64_t expected_anchors(std::int64_t height, std::int64_t width, std::int64_t shapes) {
  std::int64_t n = 0;
  for (int level = 3; level <= 7; ++level) n += halved(height, level) * halved(width, level) * shapes;
  return n;
}

double brute_iou(const float* a, const float* b) {
  const double w = std::min(a[2], b[2]) - std::max(a[0], b[0]);
  const double h = std::min(a[3], b[3]) - std::max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const double inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// Random corner boxes in a 100 x 100 image, clustered so that many overlap.
torch::Tensor random_boxes(std::int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> centre(20, 80), side(5, 40);
  torch::Tensor t = torch::empty({n, 4});
  auto a = t.accessor<float, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    const float cx = centre(rng), cy = centre(rng), w = side(rng), h = side(rng);
    a[i][0] = cx - w / 2;
    a[i][1] = cy - h / 2;
    a[i][2] = cx + w / 2;
    a[i][3] = cy + h / 2;
  }
  return t;
}

// A batch of `n` 64 x 64 images: noise, and one or two bright tall rectangles per image
// (none on every fourth image), with their boxes.
Batch synthetic_batch(std::int64_t n, std::uint64_t seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::uniform_int_distribution<int> x0(2, 36), y0(2, 26), w(14, 22), h(20, 34);
  Batch batch;
  batch.images = torch::rand({n, 1, 64, 64}, torch::TensorOptions().dtype(torch::kFloat32)) * 0.3;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<std::array<float, 4>> boxes;
    const int count = i % 4 == 3 ? 0 : 1 + static_cast<int>(i % 2);
    for (int k = 0; k < count; ++k) {
      const int bx = k == 0 ? x0(rng) / 2 : 34 + x0(rng) / 4, by = y0(rng), bw = w(rng) / (count == 2 ? 2 : 1) + 4,
                bh = h(rng);
      batch.images.index_put_({i, 0, torch::indexing::Slice(by, by + bh), torch::indexing::Slice(bx, bx + bw)}, 0.9);
      boxes.push_back({static_cast<float>(bx), static_cast<float>(by), static_cast<float>(bw), static_cast<float>(bh)});
    }
    torch::Tensor t = torch::zeros({static_cast<std::int64_t>(boxes.size()), 4});
    for (std::size_t k = 0; k < boxes.size(); ++k)
      for (int j = 0; j < 4; ++j) t[static_cast<std::int64_t>(k)][j] = boxes[k][static_cast<std::size_t>(j)];
    batch.boxes.push_back(t);
  }
  batch.labels = torch::zeros({n}, torch::kInt64);
  return batch;
}

double train_steps(Model& model, Loss& loss, const Batch& batch, int steps, double lr,
                   std::vector<double>* losses = nullptr) {
  torch::optim::Adam optimizer(model.parameters(), torch::optim::AdamOptions(lr));
  model.train();
  double last = 0;
  for (int s = 0; s < steps; ++s) {
    optimizer.zero_grad();
    auto value = loss.compute(model.forward(batch.images), batch);
    value.backward();
    optimizer.step();
    last = value.item<double>();
    if (losses) losses->push_back(last);
  }
  return last;
}

}  // namespace

TEST_CASE("anchors: count and order and centres and sizes", "[retinanet]") {
  det::AnchorLevel level{2, 3, 8.0, 16.0};  // 2 rows, 3 columns, stride 8, size 16
  const auto anchors = det::make_anchors({level}, {1.0, 4.0}, {1.0, 2.0});
  REQUIRE(anchors.sizes() == std::vector<std::int64_t>{2 * 3 * 4, 4});
  auto a = anchors.accessor<float, 2>();
  // Cell (0, 0), shape (ratio 1, scale 1): 16 x 16 around (4, 4).
  CHECK(a[0][0] == Approx(-4));
  CHECK(a[0][1] == Approx(-4));
  CHECK(a[0][2] == Approx(12));
  CHECK(a[0][3] == Approx(12));
  // Shape (ratio 1, scale 2): 32 x 32.
  CHECK(a[1][2] - a[1][0] == Approx(32));
  // Shape (ratio 4 = height / width, scale 1): 8 wide, 32 tall, same centre.
  CHECK(a[2][2] - a[2][0] == Approx(8));
  CHECK(a[2][3] - a[2][1] == Approx(32));
  CHECK((a[2][0] + a[2][2]) / 2 == Approx(4));
  // The next cell is one column to the right; the fourth cell starts the second row.
  CHECK((a[4][0] + a[4][2]) / 2 == Approx(12));
  CHECK((a[4][1] + a[4][3]) / 2 == Approx(4));
  CHECK((a[12][0] + a[12][2]) / 2 == Approx(4));
  CHECK((a[12][1] + a[12][3]) / 2 == Approx(12));

  // Two levels concatenate in order.
  const auto two = det::make_anchors({level, {1, 1, 16.0, 64.0}}, {1.0}, {1.0});
  REQUIRE(two.size(0) == 7);
  CHECK(two[6][2].item<float>() - two[6][0].item<float>() == Approx(64));
  CHECK(two[6][0].item<float>() == Approx(8 - 32));

  // The model's anchors follow its pyramid: 64 x 64 gives 8x8 + 4x4 + 2x2 + 1 + 1 cells.
  auto model = make_retinanet(tiny(18));
  torch::NoGradGuard no_grad;
  const auto out = model->forward(torch::zeros({1, 1, 64, 64}));
  CHECK(out.extra.at(det::keys::kAnchors).size(0) == (64 + 16 + 4 + 1 + 1) * 9);
  CHECK(out.extra.at(det::keys::kLevelAnchors).sum().item<std::int64_t>() == (64 + 16 + 4 + 1 + 1) * 9);
}

TEST_CASE("anchor matching: thresholds and ignore band and forced best anchors", "[retinanet]") {
  // 2 truth boxes x 5 anchors.
  const auto iou = torch::tensor({{0.70f, 0.45f, 0.10f, 0.00f, 0.30f},  //
                                  {0.20f, 0.55f, 0.20f, 0.00f, 0.35f}});
  const auto m = det::match_anchors(iou, 0.5, 0.4, /*force_best=*/false);
  CHECK(m[0].item<std::int64_t>() == 0);
  CHECK(m[1].item<std::int64_t>() == 1);
  CHECK(m[2].item<std::int64_t>() == det::kBackground);
  CHECK(m[3].item<std::int64_t>() == det::kBackground);
  CHECK(m[4].item<std::int64_t>() == det::kBackground);
  // A truth box whose best anchor is below every threshold still gets it.
  const auto low = torch::tensor({{0.10f, 0.20f, 0.30f},  //
                                  {0.60f, 0.05f, 0.00f}});
  const auto forced = det::match_anchors(low, 0.5, 0.4, true);
  CHECK(forced[0].item<std::int64_t>() == 1);
  CHECK(forced[1].item<std::int64_t>() == det::kBackground);
  CHECK(forced[2].item<std::int64_t>() == 0);
  const auto ignored = det::match_anchors(torch::tensor({{0.45f, 0.9f}}), 0.5, 0.4, true);
  CHECK(ignored[0].item<std::int64_t>() == det::kIgnore);
  CHECK(det::match_anchors(torch::zeros({0, 4}), 0.5, 0.4)
            .eq(det::kBackground)
            .all()
            .item<bool>());
  CHECK_THROWS_AS(det::match_anchors(iou, 0.4, 0.5), std::invalid_argument);
}

TEST_CASE("box encoding and decoding round trip and IoU", "[retinanet]") {
  std::mt19937 rng(7);
  const auto anchors = random_boxes(50, rng);
  const auto boxes = random_boxes(50, rng);
  for (const auto weights : {std::array<double, 4>{1, 1, 1, 1}, std::array<double, 4>{10, 10, 5, 5}}) {
    const det::BoxCoder coder{weights};
    const auto deltas = coder.encode(anchors, boxes);
    CHECK(torch::allclose(coder.decode(anchors, deltas), boxes, 1e-4, 1e-3));
    // A box equal to its anchor encodes to zeros.
    CHECK(coder.encode(anchors, anchors).abs().max().item<float>() < 1e-5);
  }
  const det::BoxCoder coder;
  const auto shifted = coder.encode(torch::tensor({{0.f, 0.f, 10.f, 20.f}}), torch::tensor({{5.f, 0.f, 25.f, 20.f}}));
  CHECK(shifted[0][0].item<float>() == Approx(1.0));            // centre 5 -> 15, width 10
  CHECK(shifted[0][2].item<float>() == Approx(std::log(2.0)));  // width 10 -> 20

  const auto iou = det::box_iou(anchors, boxes);
  for (int i = 0; i < 50; i += 7)
    for (int j = 0; j < 50; j += 3)
      CHECK(iou[i][j].item<float>() ==
            Approx(brute_iou(anchors[i].data_ptr<float>(), boxes[j].data_ptr<float>())).margin(1e-5));
  const auto xywh = torch::tensor({{4.f, 6.f, 10.f, 20.f}});
  CHECK(torch::equal(det::xyxy_to_xywh(det::xywh_to_xyxy(xywh)), xywh));
}

TEST_CASE("NMS matches a brute-force reference on random boxes", "[retinanet]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 5; ++trial) {
    const std::int64_t n = 150;
    const auto boxes = random_boxes(n, rng);
    const auto scores = torch::rand({n});
    const double threshold = 0.3 + 0.1 * trial;
    // Reference: sort by score, keep a box unless it overlaps a kept one by more than the threshold.
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return scores[a].item<float>() > scores[b].item<float>(); });
    std::vector<std::int64_t> expected;
    for (std::int64_t i : order) {
      bool suppressed = false;
      for (std::int64_t k : expected)
        if (brute_iou(boxes[i].data_ptr<float>(), boxes[k].data_ptr<float>()) > threshold) suppressed = true;
      if (!suppressed) expected.push_back(i);
    }
    const auto kept = det::nms(boxes, scores, threshold);
    std::vector<std::int64_t> got(kept.data_ptr<std::int64_t>(), kept.data_ptr<std::int64_t>() + kept.numel());
    CHECK(got == expected);
    CHECK(expected.size() > 5);
    const auto first3 = det::nms(boxes, scores, threshold, 3);
    REQUIRE(first3.numel() == 3);
    CHECK(std::vector<std::int64_t>(first3.data_ptr<std::int64_t>(), first3.data_ptr<std::int64_t>() + 3) ==
          std::vector<std::int64_t>(expected.begin(), expected.begin() + 3));
  }
  CHECK(det::nms(torch::zeros({0, 4}), torch::zeros({0}), 0.5).numel() == 0);
}

TEST_CASE("focal loss against hand-computed values", "[retinanet]") {
  const double ln2 = std::log(2.0);
  // p = 0.5, positive: alpha (1 - p)^2 (-log p).
  auto at_zero = det::sigmoid_focal_loss(torch::tensor({0.0}, torch::kFloat64), torch::tensor({1.0}, torch::kFloat64),
                                         0.25, 2.0);
  CHECK(at_zero.item<double>() == Approx(0.25 * 0.25 * ln2));
  // logit 2, negative: (1 - alpha) p^2 (-log(1 - p)), p = 1 / (1 + e^-2).
  const double p = 1.0 / (1.0 + std::exp(-2.0));
  auto negative = det::sigmoid_focal_loss(torch::tensor({2.0}, torch::kFloat64), torch::tensor({0.0}, torch::kFloat64),
                                          0.25, 2.0);
  CHECK(negative.item<double>() == Approx(0.75 * p * p * -std::log(1 - p)));
  // gamma 0 and no alpha is binary cross-entropy.
  auto bce = det::sigmoid_focal_loss(torch::tensor({-1.5}, torch::kFloat64), torch::tensor({1.0}, torch::kFloat64), -1,
                                     0.0);
  CHECK(bce.item<double>() == Approx(std::log(1 + std::exp(1.5))));

  // The loss plugin on a hand-made output: anchor 0 equals the truth box, anchor 1 is far.
  ModelOutput out;
  out.extra[det::keys::kClsLogits] = torch::zeros({1, 2});
  out.extra[det::keys::kBoxDeltas] = torch::zeros({1, 2, 4});
  out.extra[det::keys::kAnchors] = torch::tensor({{0.f, 0.f, 10.f, 20.f}, {40.f, 40.f, 50.f, 60.f}});
  out.extra[det::keys::kBoxWeights] = torch::ones({4}, torch::kFloat64);
  Batch batch;
  batch.images = torch::zeros({1, 1, 64, 64});
  batch.boxes = {torch::tensor({{0.f, 0.f, 10.f, 20.f}})};
  auto loss = make_loss();
  CHECK(to_string(test::plugins().find(Kind::Loss, "retinanet_focal")->accepts) == "boxes");
  // One positive (0.25 * 0.25 ln 2) + one negative (0.75 * 0.25 ln 2), per 1 positive; boxes exact.
  CHECK(loss->compute(out, batch).item<double>() == Approx(0.25 * ln2).epsilon(1e-5));
  // A box off by a delta of 1 in x: smooth-L1 with beta 1/9 adds 1 - 0.5 / 9.
  out.extra[det::keys::kBoxDeltas] = torch::tensor({{{1.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}}});
  CHECK(loss->compute(out, batch).item<double>() == Approx(0.25 * ln2 + 1 - 0.5 / 9).epsilon(1e-5));
  // An image head adds BCE against "has a box".
  out.image_logits = torch::zeros({1});
  CHECK(loss->compute(out, batch).item<double>() == Approx(0.25 * ln2 + 1 - 0.5 / 9 + ln2).epsilon(1e-5));
  // A mask model's output is refused with the loss's name.
  ModelOutput mask_output;
  mask_output.mask_logits = torch::zeros({1, 1, 64, 64});
  CHECK_THROWS_WITH(loss->compute(mask_output, batch), Contains("retinanet_focal") && Contains("cls_logits"));
}

TEST_CASE("retinanet output shapes for depths 18 34 50 and several sizes", "[retinanet]") {
  torch::NoGradGuard no_grad;
  struct Case {
    std::int64_t depth, height, width;
  };
  CHECK(test::plugins().find(Kind::Model, "retinanet")->output == OutputKind::Boxes);
  for (const Case c : {Case{18, 64, 64}, Case{18, 96, 128}, Case{18, 70, 45}, Case{34, 64, 96}, Case{50, 64, 64}}) {
    INFO("depth " << c.depth << " input " << c.height << " x " << c.width);
    auto model = make_retinanet(tiny(c.depth));
    model->eval();
    const auto out = model->forward(torch::rand({2, 1, c.height, c.width}));
    const std::int64_t a = expected_anchors(c.height, c.width, 9);
    CHECK(out.extra.at(det::keys::kClsLogits).sizes() == std::vector<std::int64_t>{2, a});
    CHECK(out.extra.at(det::keys::kBoxDeltas).sizes() == std::vector<std::int64_t>{2, a, 4});
    CHECK(out.extra.at(det::keys::kAnchors).sizes() == std::vector<std::int64_t>{a, 4});
    CHECK_FALSE(out.image_logits.defined());
    CHECK_FALSE(out.mask_logits.defined());
    const Prediction p = model->predict(out);
    REQUIRE(p.boxes.size() == 2);
    for (const auto& b : p.boxes) {
      REQUIRE(b.dim() == 2);
      CHECK(b.size(1) == 5);
      CHECK(b.size(0) <= 100);
      if (b.size(0) == 0) continue;
      // (score, x, y, w, h) inside the image, scores decreasing.
      CHECK(b.select(1, 1).min().item<float>() >= 0);
      CHECK((b.select(1, 1) + b.select(1, 3)).max().item<float>() <= c.width + 1e-3);
      CHECK((b.select(1, 2) + b.select(1, 4)).max().item<float>() <= c.height + 1e-3);
      CHECK(b[0][0].item<float>() >= b[b.size(0) - 1][0].item<float>());
    }
  }
  // The image head, the bias prior and the gate.
  Given with_head = tiny(18);
  with_head["image_head"] = true;
  with_head["gate"] = 0.99;
  with_head["prior"] = 0.2;
  auto model = make_retinanet(with_head);
  model->eval();
  const auto out = model->forward(torch::rand({3, 1, 64, 64}));
  REQUIRE(out.image_logits.sizes() == std::vector<std::int64_t>{3});
  // Head weights start at N(0, 0.01): every anchor's probability starts near the prior.
  CHECK(torch::sigmoid(out.extra.at(det::keys::kClsLogits)).mean().item<double>() == Approx(0.2).margin(0.02));
  const Prediction gated = model->predict(out);
  REQUIRE(gated.image_prob.defined());
  for (std::int64_t i = 0; i < 3; ++i)
    if (gated.image_prob[i].item<double>() < 0.99) CHECK(gated.boxes[static_cast<std::size_t>(i)].size(0) == 0);
  Given bad = tiny(18);
  bad["gate"] = 0.5;
  CHECK_THROWS_WITH(make_retinanet(bad), Contains("image_head"));
  bad = tiny(26);
  CHECK_THROWS_WITH(make_retinanet(bad), Contains("18, 34 or 50"));
  bad = tiny(18);
  bad["sizes"] = std::vector<double>{32, 64};
  CHECK_THROWS_WITH(make_retinanet(bad), Contains("5 anchor sizes"));
}

TEST_CASE("retinanet: a few Adam steps lower the loss on a fixed batch", "[retinanet]") {
  torch::manual_seed(3);
  Given given = tiny(18);
  given["image_head"] = true;
  auto model = make_retinanet(given);
  auto loss = make_loss();
  const Batch batch = synthetic_batch(4, 1);
  std::vector<double> losses;
  train_steps(*model, *loss, batch, 12, 1e-3, &losses);
  INFO("first " << losses.front() << " last " << losses.back());
  CHECK(std::isfinite(losses.back()));
  CHECK(losses.back() < 0.7 * losses.front());
}

TEST_CASE("retinanet overfits a handful of synthetic images to rsna_map above 0.5", "[retinanet]") {
  torch::manual_seed(5);
  Given given = {{"depth", std::int64_t{18}},
                 {"width", std::int64_t{16}},
                 {"fpn_channels", std::int64_t{32}},
                 {"head_convs", std::int64_t{2}},
                 {"sizes", std::vector<double>{20, 40, 80, 160, 320}},
                 {"ratios", std::vector<double>{1.0, 2.0}},
                 {"scales", std::vector<double>{1.0, 1.4}},
                 {"score_threshold", 0.3},
                 {"max_detections", std::int64_t{5}}};
  auto model = make_retinanet(given);
  auto loss = make_loss();
  const Batch batch = synthetic_batch(8, 2);
  train_steps(*model, *loss, batch, 150, 2e-3);
  auto metric = test::plugins().make_metric("rsna_map", test::plugins().params_for(Kind::Metric, "rsna_map"));
  model->eval();
  torch::NoGradGuard no_grad;
  const Prediction p = model->predict(model->forward(batch.images));
  metric->update(p, batch);
  const double map = metric->compute();
  INFO("rsna_map " << map << ", boxes of image 0: " << p.boxes[0]);
  CHECK(map > 0.5);
}

TEST_CASE("a box model with a mask loss or metric is a configuration error", "[retinanet]") {
  const fs::path dir = scratch_dir("retinanet_pairing");
  const std::string experiment = (source_dir() / "experiments" / "rsna_retinanet_kfold.toml").string();
  const std::string exe = shell_quote(chestlab_exe());
  std::string log;
  // The recipe's configuration is valid; its images are not here, so validate stops at the
  // data (exit 3), after the configuration check.
  CHECK(run_command(exe + " validate " + shell_quote(experiment), &log) != 2);
  CHECK_THAT(log, Contains("configuration: ok"));
  INFO(log);
  {
    std::ifstream in(experiment);
    std::stringstream text;
    text << in.rdbuf();
    std::string toml = text.str();
    // Swap the loss for a mask loss, and add a mask metric.
    const auto at = toml.find("plugin = \"retinanet_focal\"");
    REQUIRE(at != std::string::npos);
    const auto end = toml.find("\n[", at);
    toml = toml.substr(0, at) + "plugin = \"dice\"\n" + toml.substr(end) + "\n[[metrics]]\nplugin = \"mean_iou\"\n";
    std::ofstream(dir / "mixed.toml") << toml;
  }
  CHECK(run_command(exe + " validate " + shell_quote((dir / "mixed.toml").string()), &log) == 2);
  CHECK_THAT(log, Contains("loss \"dice\" requires mask, but model \"retinanet\" outputs boxes"));
  CHECK_THAT(log, Contains("metric \"mean_iou\" requires mask, but model \"retinanet\" outputs boxes"));
}

TEST_CASE("rsna_retinanet_small runs end to end on a synthetic RSNA corpus", "[retinanet][e2e]") {
  const fs::path dir = scratch_dir("retinanet_e2e");
  // 24 patients: every third has two boxes, every third one, the rest none (1024 px units).
  std::string labels = "patientId,x,y,width,height,Target\n", classes = "patientId,class\n";
  for (int i = 0; i < 24; ++i) {
    const std::string id = fmt::format("retina-{:02}", i);
    const int x = 200 + 9 * i, y = 260 + 6 * i;
    if (i % 3 == 0) {
      labels += fmt::format("{},{},{},180,300,1\n{},{},{},160,280,1\n", id, x, y, id, x + 360, y + 30);
      classes += id + ",Lung Opacity\n" + id + ",Lung Opacity\n";
    } else if (i % 3 == 1) {
      labels += fmt::format("{},{},{},220,320,1\n", id, x + 320, y);
      classes += id + ",Lung Opacity\n";
    } else {
      labels += id + ",,,,,0\n";
      classes += id + ",Normal\n";
    }
  }
  std::ofstream(dir / "labels.csv") << labels;
  std::ofstream(dir / "classes.csv") << classes;
  const fs::path corpus = dir / "corpus";
  const std::string exe = shell_quote(chestlab_exe());
  std::string log;
  REQUIRE(run_command(exe + " synth rsna --labels " + shell_quote((dir / "labels.csv").string()) + " --class-info " +
                          shell_quote((dir / "classes.csv").string()) + " --out " + shell_quote(corpus.string()),
                      &log) == 0);
  const std::string experiment = (source_dir() / "experiments" / "rsna_retinanet_small.toml").string();
  const fs::path results = dir / "results";
  const std::string command =
      exe + " run " + shell_quote(experiment) + " --set dataset.images=" + shell_quote(corpus.string()) +
      " --set dataset.labels=" + shell_quote((corpus / "stage_2_train_labels.csv").string()) +
      " --set dataset.class_info=" + shell_quote((corpus / "stage_2_detailed_class_info.csv").string()) +
      // The recipe's network and size, fewer images and epochs: this checks the pipeline.
      " --set train.epochs=1 --set cv.folds=3 --output " + shell_quote(results.string()) + " --quiet";
  REQUIRE(run_command(command, &log) == 0);
  INFO(log);
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(results))
    if (e.path().extension() == ".h5") files.push_back(e.path());
  REQUIRE(files.size() == 1);
  const RunInfo run = read_run(files.front().string());
  CHECK(run.status == RunStatus::Complete);
  CHECK(run.meta.monitor == "rsna_map");
  REQUIRE(run.folds.size() == 1);
  const auto& fold = run.folds.front();
  CHECK(fold.status == FoldStatus::Complete);
  REQUIRE(fold.history.size() == 1);
  CHECK(std::isfinite(fold.history[0].train_loss));
  CHECK(fold.history[0].metrics[0] >= 0.0);
  CHECK(fold.history[0].metrics[0] <= 1.0);
}

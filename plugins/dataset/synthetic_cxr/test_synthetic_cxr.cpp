// The synthetic_cxr dataset plugin, through the plugin registry as the host uses it.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "torch_helpers.h"
#include "chestlab/errors.h"
#include "chestlab/host/registry.h"

using namespace chestlab;

namespace {

std::shared_ptr<Dataset> make_synthetic(const std::map<std::string, ParamValue>& given,
                                        std::uint64_t seed = 2024) {
  const auto& reg = test::plugins();
  DatasetContext context;
  context.seed = seed;
  return reg.make_dataset("synthetic_cxr", reg.params_for(Kind::Dataset, "synthetic_cxr", given), context);
}

bool same(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.dtype() == b.dtype() && torch::equal(a, b);
}

}  // namespace

TEST_CASE("synthetic_cxr: schema defaults and classes", "[synthetic_cxr]") {
  const auto& reg = test::plugins();
  const ComponentInfo* info = reg.find(Kind::Dataset, "synthetic_cxr");
  REQUIRE(info != nullptr);
  const Params p = reg.params_for(Kind::Dataset, "synthetic_cxr");
  CHECK(p.integer("count") == 240);
  CHECK(p.integer("image_size") == 128);
  CHECK(p.real("positive_fraction") == Approx(0.6));
  CHECK(p.integer("max_opacities") == 3);
  CHECK(p.integer("seed_offset") == 0);
  CHECK(p.integer("patients") == 0);
  auto ds = make_synthetic({});
  CHECK(ds->size() == 240);
  CHECK(ds->class_names() ==
        std::vector<std::string>{"Normal", "No Lung Opacity / Not Normal", "Lung Opacity"});

  CHECK_THROWS_AS(reg.params_for(Kind::Dataset, "synthetic_cxr", {{"image_size", std::int64_t{16}}}),
                  ConfigError);
  CHECK_THROWS_AS(reg.params_for(Kind::Dataset, "synthetic_cxr", {{"positive_fraction", 1.5}}), ConfigError);
  CHECK_THROWS_AS(make_synthetic({{"count", std::int64_t{5}}, {"patients", std::int64_t{6}}}), ConfigError);
}

TEST_CASE("synthetic_cxr: sample tensors have the documented shapes, types and ranges", "[synthetic_cxr]") {
  auto ds = make_synthetic({{"count", std::int64_t{24}}, {"image_size", std::int64_t{64}}});
  int positives = 0;
  for (std::size_t i = 0; i < ds->size(); ++i) {
    const Sample s = ds->get(i);
    INFO("sample " << i);
    REQUIRE(s.image.defined());
    CHECK(s.image.sizes() == torch::IntArrayRef({1, 64, 64}));
    CHECK(s.image.dtype() == torch::kFloat32);
    CHECK(s.image.min().item<float>() >= 0.0f);
    CHECK(s.image.max().item<float>() <= 1.0f);
    CHECK(s.image.std().item<float>() > 0.05f);  // an image, not a constant
    REQUIRE(s.mask.defined());
    CHECK(s.mask.sizes() == torch::IntArrayRef({1, 64, 64}));
    CHECK(s.mask.dtype() == torch::kFloat32);
    CHECK(torch::logical_or(s.mask == 0, s.mask == 1).all().item<bool>());
    REQUIRE(s.boxes.defined());
    CHECK(s.boxes.dim() == 2);
    CHECK(s.boxes.size(1) == 4);
    CHECK(s.boxes.dtype() == torch::kFloat32);
    const bool has_boxes = s.boxes.size(0) > 0;
    CHECK(has_boxes == (s.label == 2));
    CHECK(has_boxes == (s.mask.sum().item<float>() > 0));
    if (has_boxes) {
      ++positives;
      // Boxes lie inside the image and have a positive size.
      CHECK((s.boxes.select(1, 0) >= 0).all().item<bool>());
      CHECK((s.boxes.select(1, 1) >= 0).all().item<bool>());
      CHECK((s.boxes.select(1, 2) > 0).all().item<bool>());
      CHECK(((s.boxes.select(1, 0) + s.boxes.select(1, 2)) <= 64).all().item<bool>());
      CHECK(((s.boxes.select(1, 1) + s.boxes.select(1, 3)) <= 64).all().item<bool>());
    }
    CHECK(s.original_height == 64);
    CHECK(s.original_width == 64);
    CHECK(s.id == "synth-" + std::to_string(i));
  }
  CHECK(positives > 0);
  CHECK(positives < 24);
}

TEST_CASE("synthetic_cxr: info() agrees with get() without drawing pixels", "[synthetic_cxr]") {
  auto ds = make_synthetic({{"count", std::int64_t{40}}, {"image_size", std::int64_t{48}},
                            {"patients", std::int64_t{9}}});
  int counts[3] = {0, 0, 0};
  for (std::size_t i = 0; i < ds->size(); ++i) {
    const SampleInfo info = ds->info(i);
    const Sample s = ds->get(i);
    CHECK(info.id == s.id);
    CHECK(info.group == s.group);
    CHECK(info.label == s.label);
    ++counts[info.label];
  }
  CHECK(counts[0] + counts[1] > 0);
  CHECK(counts[2] > 0);
  CHECK_THROWS_AS(ds->info(40), std::out_of_range);
  CHECK_THROWS_AS(ds->get(40), std::out_of_range);
}

TEST_CASE("synthetic_cxr: samples are deterministic per seed, across threads", "[synthetic_cxr]") {
  const std::map<std::string, ParamValue> given = {{"count", std::int64_t{8}}, {"image_size", std::int64_t{64}}};
  auto a = make_synthetic(given, 7);
  auto b = make_synthetic(given, 7);
  auto c = make_synthetic(given, 8);
  auto shifted = make_synthetic({{"count", std::int64_t{8}}, {"image_size", std::int64_t{64}},
                                 {"seed_offset", std::int64_t{1}}}, 7);
  for (std::size_t i = 0; i < 8; ++i) {
    const Sample sa = a->get(i), sb = b->get(i);
    CHECK(same(sa.image, sb.image));
    CHECK(same(sa.mask, sb.mask));
    CHECK(same(sa.boxes, sb.boxes));
    CHECK_FALSE(same(sa.image, c->get(i).image));
    // seed_offset 1 with seed 7 is the pool of seed 8.
    CHECK(same(shifted->get(i).image, c->get(i).image));
  }
  // Concurrent get() calls return what sequential ones do.
  std::vector<torch::Tensor> sequential;
  for (std::size_t i = 0; i < 8; ++i) sequential.push_back(a->get(i).image);
  std::vector<torch::Tensor> parallel(8);
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (std::size_t i = w; i < 8; i += 4) parallel[i] = a->get(i).image;
    });
  }
  for (auto& t : workers) t.join();
  for (std::size_t i = 0; i < 8; ++i) CHECK(same(parallel[i], sequential[i]));
}

TEST_CASE("synthetic_cxr: patients group images and 0 gives one group per image", "[synthetic_cxr]") {
  auto grouped = make_synthetic({{"count", std::int64_t{30}}, {"image_size", std::int64_t{32}},
                                 {"patients", std::int64_t{7}}});
  std::set<std::string> groups;
  for (std::size_t i = 0; i < grouped->size(); ++i) {
    const SampleInfo info = grouped->info(i);
    CHECK(info.group == "synth-patient-" + std::to_string(i % 7));
    groups.insert(info.group);
  }
  CHECK(groups.size() == 7);

  auto single = make_synthetic({{"count", std::int64_t{30}}, {"image_size", std::int64_t{32}}});
  groups.clear();
  for (std::size_t i = 0; i < single->size(); ++i) groups.insert(single->info(i).group);
  CHECK(groups.size() == 30);
}

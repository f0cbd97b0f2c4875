// The batch loader: order and content independent of the worker count, error handling.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <set>

#include "chestlab/errors.h"
#include "chestlab/host/loader.h"

using namespace chestlab;

namespace {

// Sample i is an 8x8 ramp scaled by i with a box in its left half, so flips are visible.
struct RampDataset : Dataset {
  std::size_t n;
  std::set<std::size_t> broken;
  explicit RampDataset(std::size_t count, std::set<std::size_t> bad = {}) : n(count), broken(std::move(bad)) {}
  std::size_t size() const override { return n; }
  SampleInfo info(std::size_t i) const override { return {"s" + std::to_string(i), "g" + std::to_string(i), 0}; }
  Sample get(std::size_t i) const override {
    if (broken.count(i)) throw DataError("/data/s" + std::to_string(i) + ".dcm", "truncated file");
    Sample s;
    s.image = torch::arange(64, torch::kFloat32).reshape({1, 8, 8}) * static_cast<float>(i + 1);
    s.mask = torch::zeros({1, 8, 8});
    s.mask.index_put_({0, torch::indexing::Slice(2, 4), torch::indexing::Slice(1, 3)}, 1.0);
    s.boxes = torch::tensor({{1.0f, 2.0f, 2.0f, 2.0f}});
    s.id = "s" + std::to_string(i);
    s.group = s.id;
    return s;
  }
  std::vector<std::string> class_names() const override { return {"a"}; }
};

std::vector<Batch> load_all(std::size_t workers, std::size_t prefetch, const AugmentPipeline* augment,
                            std::shared_ptr<const Dataset> data, bool skip = false) {
  LoaderOptions o;
  o.batch_size = 5;
  o.workers = workers;
  o.prefetch = prefetch;
  o.seed = 7;
  o.fold = 1;
  o.epoch = 3;
  o.skip_bad_samples = skip;
  std::vector<std::size_t> indices(data->size());
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  BatchLoader loader(data, indices, augment, o);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(*b);
  return out;
}

AugmentPipeline flip_half_the_time() {
  AugmentConfig flip;
  flip.type = "hflip";
  flip.params.set("p", 0.5);
  return AugmentPipeline({flip});
}

}  // namespace

TEST_CASE("1 and 4 workers give identical batches, augmentation included", "[loader]") {
  auto data = std::make_shared<RampDataset>(23);
  AugmentPipeline augment = flip_half_the_time();
  auto serial = load_all(0, 1, &augment, data);
  auto one = load_all(1, 2, &augment, data);
  auto four = load_all(4, 3, &augment, data);
  REQUIRE(serial.size() == 5);  // 23 samples in batches of 5
  REQUIRE(one.size() == serial.size());
  REQUIRE(four.size() == serial.size());
  for (std::size_t b = 0; b < serial.size(); ++b) {
    CHECK(one[b].ids == serial[b].ids);
    CHECK(four[b].ids == serial[b].ids);
    CHECK(torch::equal(four[b].images, serial[b].images));
    CHECK(torch::equal(four[b].masks, serial[b].masks));
    CHECK(torch::equal(one[b].images, serial[b].images));
    for (std::size_t i = 0; i < serial[b].boxes.size(); ++i) CHECK(torch::equal(four[b].boxes[i], serial[b].boxes[i]));
  }
}

TEST_CASE("every sample comes exactly once per epoch, shuffled", "[loader]") {
  auto data = std::make_shared<RampDataset>(23);
  auto batches = load_all(2, 2, nullptr, data);
  std::vector<std::string> seen;
  for (auto& b : batches) seen.insert(seen.end(), b.ids.begin(), b.ids.end());
  std::set<std::string> unique(seen.begin(), seen.end());
  CHECK(seen.size() == 23);
  CHECK(unique.size() == 23);
  CHECK(seen.front() + seen[1] + seen[2] != "s0s1s2");  // shuffled (fixed seed: not the identity here)
}

TEST_CASE("hflip moves image, mask and box together", "[loader][augment]") {
  auto data = std::make_shared<RampDataset>(40);
  AugmentPipeline augment = flip_half_the_time();
  auto batches = load_all(2, 2, &augment, data);
  int flipped = 0, kept = 0;
  for (auto& b : batches) {
    for (std::int64_t i = 0; i < b.size(); ++i) {
      const float box_x = b.boxes[static_cast<std::size_t>(i)][0][0].item<float>();
      const bool is_flipped = box_x == 5.0f;  // 8 - 1 - 2
      CHECK((box_x == 1.0f || is_flipped));
      // The mask's columns follow the box.
      const auto mask_cols = b.masks[i][0].sum(0).nonzero().flatten();
      CHECK(mask_cols.min().item<std::int64_t>() == static_cast<std::int64_t>(box_x));
      // The ramp decreases along x after a flip.
      const auto row = b.images[i][0][0];
      CHECK((row[0] > row[7]).item<bool>() == is_flipped);
      (is_flipped ? flipped : kept)++;
    }
  }
  CHECK(flipped > 8);
  CHECK(kept > 8);
}

TEST_CASE("a corrupt sample stops the epoch or is skipped and recorded", "[loader]") {
  auto data = std::make_shared<RampDataset>(12, std::set<std::size_t>{4});
  CHECK_THROWS_WITH(load_all(2, 2, nullptr, data), Catch::Contains("s4.dcm") && Catch::Contains("truncated"));

  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 2;
  o.skip_bad_samples = true;
  std::vector<std::size_t> indices(12);
  for (std::size_t i = 0; i < 12; ++i) indices[i] = i;
  BatchLoader loader(data, indices, nullptr, o);
  std::size_t total = 0;
  while (auto b = loader.next()) total += static_cast<std::size_t>(b->size());
  CHECK(total == 11);
  REQUIRE(loader.skipped().size() == 1);
  CHECK(loader.skipped()[0].id == "s4");
  CHECK(loader.skipped()[0].reason == "truncated file");
}

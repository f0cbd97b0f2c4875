// first_difference(): what `chestlab rerun` reports, on hand-made runs.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "chestlab/engine/run_diff.h"

using namespace chestlab;

namespace {

RunInfo two_epoch_run() {
  RunInfo run;
  run.meta.config_hash = "abc123";
  FoldInfo f;
  f.index = 0;
  f.status = FoldStatus::Complete;
  f.metric_names = {"mean_iou"};
  f.history = {{0, 0.01, 0.9, 0.8, 1.5, {0.2}}, {1, 0.005, 0.7, std::numeric_limits<double>::quiet_NaN(), 1.4, {0.3}}};
  f.best_epoch = 1;
  f.best_value = 0.3;
  f.train_ids = {"a", "b"};
  f.val_ids = {"c"};
  f.weights = {{"stem.weight", {2}, {0.5f, -0.25f}}};
  run.folds.push_back(f);
  return run;
}

}  // namespace

TEST_CASE("first_difference: identical runs match with wall-clock time and NaN aside", "[run_diff]") {
  const RunInfo a = two_epoch_run();
  RunInfo b = two_epoch_run();
  b.folds[0].history[0].seconds = 99;  // not compared
  b.created = "another day";
  CHECK_FALSE(first_difference(a, b).has_value());
}

TEST_CASE("first_difference: names the first differing field with both values", "[run_diff]") {
  const RunInfo a = two_epoch_run();
  RunInfo b = two_epoch_run();
  b.folds[0].history[1].val_loss = 0.5;  // NaN -> 0.5
  b.folds[0].weights[0].values[1] = -0.2f;  // later field: not the first
  auto d = first_difference(a, b);
  REQUIRE(d);
  CHECK(d->field == "fold 0 epoch 1 val_loss");
  CHECK(d->original == "nan");
  CHECK(d->rerun == "0.5");
  CHECK(d->describe() == "fold 0 epoch 1 val_loss: nan (original) vs 0.5 (rerun)");

  b = two_epoch_run();
  b.folds[0].weights[0].values[1] = std::nextafter(-0.25f, 0.0f);
  d = first_difference(a, b);
  REQUIRE(d);
  CHECK(d->field == "fold 0 weights stem.weight[1]");

  b = two_epoch_run();
  b.folds[0].history.pop_back();
  d = first_difference(a, b);
  REQUIRE(d);
  CHECK(d->field == "fold 0 epochs recorded");
  CHECK(d->original == "2");
  CHECK(d->rerun == "1");

  b = two_epoch_run();
  b.folds[0].index = 1;
  d = first_difference(a, b);
  REQUIRE(d);
  CHECK(d->field == "folds");
  CHECK(d->original == "[0]");

  b = two_epoch_run();
  b.meta.config_hash = "other";
  CHECK(first_difference(a, b)->field == "config hash");
}

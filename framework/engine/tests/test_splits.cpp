// Group k-fold and holdout splits: property tests on random group structures, exact small
// cases, argument validation, and the real RSNA patients.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "chestlab/rsna/labels.h"
#include "chestlab/engine/splits.h"
#include "support.h"

using chestlab::holdout_split;
using chestlab::stratified_group_kfold;

namespace {

struct Samples {
  std::vector<std::string> groups;
  std::vector<std::int64_t> labels;
};

// Random groups of 1..5 samples, with `classes` imbalanced classes (weights 1, 1/4, 1/9, ...)
// and label values that are neither dense nor positive. With pure_groups every sample of a
// group has the group's label (like a patient's class); otherwise each sample draws its own.
// Samples of a group are scattered through the list, not contiguous.
Samples random_samples(std::uint64_t seed, int group_count, int classes, bool pure_groups) {
  std::mt19937_64 rng(seed);
  std::vector<double> cumulative;
  double total = 0.0;
  for (int c = 0; c < classes; ++c) cumulative.push_back(total += 1.0 / ((c + 1.0) * (c + 1.0)));
  auto draw_label = [&]() -> std::int64_t {
    const double u = static_cast<double>(rng() >> 11) / 9007199254740992.0 * total;
    const int c = static_cast<int>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                   cumulative.begin());
    return 5 * std::min(c, classes - 1) - 3;
  };
  Samples ordered;
  for (int g = 0; g < group_count; ++g) {
    const int size = 1 + static_cast<int>(rng() % 5);
    const std::int64_t group_label = draw_label();
    for (int i = 0; i < size; ++i) {
      ordered.groups.push_back("patient-" + std::to_string(g));
      ordered.labels.push_back(pure_groups ? group_label : draw_label());
    }
  }
  Samples scattered;
  for (std::size_t i : chestlab::seeded_permutation(ordered.groups.size(), seed + 1000)) {
    scattered.groups.push_back(ordered.groups[i]);
    scattered.labels.push_back(ordered.labels[i]);
  }
  return scattered;
}

std::map<std::string, std::size_t> group_sizes(const std::vector<std::string>& groups) {
  std::map<std::string, std::size_t> sizes;
  for (const auto& g : groups) ++sizes[g];
  return sizes;
}

// Every sample in a fold in range, each group in one fold, no fold empty.
void check_fold_structure(const std::vector<std::string>& groups, const std::vector<int>& fold,
                          int folds) {
  REQUIRE(fold.size() == groups.size());
  std::map<std::string, int> fold_of_group;
  std::vector<std::size_t> fold_size(folds, 0);
  for (std::size_t i = 0; i < fold.size(); ++i) {
    REQUIRE(fold[i] >= 0);
    REQUIRE(fold[i] < folds);
    auto [it, first] = fold_of_group.emplace(groups[i], fold[i]);
    INFO("group " << groups[i]);
    REQUIRE(it->second == fold[i]);
    ++fold_size[fold[i]];
  }
  for (int f = 0; f < folds; ++f) {
    INFO("fold " << f);
    CHECK(fold_size[f] > 0);
  }
}

std::map<std::int64_t, std::vector<std::int64_t>> per_class_fold_counts(
    const std::vector<std::int64_t>& labels, const std::vector<int>& fold, int folds) {
  std::map<std::int64_t, std::vector<std::int64_t>> counts;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    auto& row = counts[labels[i]];
    row.resize(folds, 0);
    ++row[fold[i]];
  }
  return counts;
}

std::int64_t spread(const std::vector<std::int64_t>& values) {
  auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return *hi - *lo;
}

}  // namespace

TEST_CASE("seeded_permutation is the same on every platform", "[splits]") {
  // Expected values from an independent Python implementation of std::mt19937_64 (checked
  // against the standard's 10000th-output value) and of the same Fisher-Yates with rejection.
  CHECK(chestlab::seeded_permutation(10, 42) ==
        std::vector<std::size_t>{1, 7, 9, 0, 3, 8, 4, 2, 5, 6});
  CHECK(chestlab::seeded_permutation(12, 0) ==
        std::vector<std::size_t>{0, 10, 9, 8, 7, 1, 2, 4, 11, 3, 5, 6});
  CHECK(chestlab::seeded_permutation(0, 1).empty());
  CHECK(chestlab::seeded_permutation(1, 1) == std::vector<std::size_t>{0});
}

TEST_CASE("stratified group k-fold: structure and per-class balance on random groups",
          "[splits]") {
  // Sound bound (when each group has one label): a group of class c goes to a fold with the
  // fewest class-c samples, since only that class's term of the objective changes and it grows
  // with that fold's count. Adding g <= G_c to the minimum m gives m + g <= m + G_c, so if the
  // spread max - min was <= G_c it stays <= G_c (the minimum cannot fall). Hence every class's
  // per-fold counts differ by at most G_c, the largest group of that class.
  for (std::uint64_t seed : {1u, 2u, 3u, 4u, 5u, 6u}) {
    for (int classes = 2; classes <= 4; ++classes) {
      for (int folds : {2, 3, 5}) {
        const Samples s = random_samples(seed, 150 + 40 * classes, classes, /*pure_groups=*/true);
        const std::vector<int> fold = stratified_group_kfold(s.groups, s.labels, folds, seed);
        CAPTURE(seed, classes, folds);
        check_fold_structure(s.groups, fold, folds);

        std::map<std::int64_t, std::int64_t> largest_group;  // per class
        const auto sizes = group_sizes(s.groups);
        for (std::size_t i = 0; i < s.groups.size(); ++i) {
          auto& g = largest_group[s.labels[i]];
          g = std::max<std::int64_t>(g, sizes.at(s.groups[i]));
        }
        for (const auto& [label, counts] : per_class_fold_counts(s.labels, fold, folds)) {
          CAPTURE(label);
          CHECK(spread(counts) <= largest_group.at(label));
        }
      }
    }
  }
}

TEST_CASE("stratified group k-fold: mixed-label groups stay whole", "[splits]") {
  for (std::uint64_t seed : {7u, 8u, 9u}) {
    for (int classes = 2; classes <= 4; ++classes) {
      const Samples s = random_samples(seed, 120, classes, /*pure_groups=*/false);
      CAPTURE(seed, classes);
      check_fold_structure(s.groups, stratified_group_kfold(s.groups, s.labels, 4, seed), 4);
    }
  }
}

TEST_CASE("group k-fold without stratification balances fold sizes", "[splits]") {
  // Each group goes to the smallest fold; by the argument above with one class, fold sizes
  // differ by at most the largest group (5).
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    for (int folds : {2, 5, 10}) {
      const Samples s = random_samples(seed, 300, 3, /*pure_groups=*/false);
      const std::vector<int> fold = stratified_group_kfold(s.groups, {}, folds, seed, false);
      CAPTURE(seed, folds);
      check_fold_structure(s.groups, fold, folds);
      std::vector<std::int64_t> sizes(folds, 0);
      for (int f : fold) ++sizes[f];
      CHECK(spread(sizes) <= 5);
      // Labels, if given, are ignored.
      CHECK(stratified_group_kfold(s.groups, s.labels, folds, seed, false) == fold);
    }
  }
}

TEST_CASE("stratified group k-fold is deterministic in the seed", "[splits]") {
  const Samples s = random_samples(21, 400, 3, /*pure_groups=*/true);
  const auto a = stratified_group_kfold(s.groups, s.labels, 5, 1234);
  CHECK(stratified_group_kfold(s.groups, s.labels, 5, 1234) == a);
  // Ties between equal groups are broken by the seeded shuffle, so with hundreds of them
  // another seed gives another assignment.
  CHECK(stratified_group_kfold(s.groups, s.labels, 5, 1235) != a);
  CHECK(stratified_group_kfold(s.groups, s.labels, 5, 99) != a);
}

TEST_CASE("stratified group k-fold places large groups first, per class", "[splits]") {
  // Class 0: groups A (3 samples), B (2), C (2), D (1); class 1: E (1), F (1). Two folds.
  // Largest first: A, then B to the other fold, C joins B (2 < 3), D joins A: 4 and 4.
  // (Smallest first would end 3 vs 5: D, B apart, C with D, A with B.) E and F split.
  const std::vector<std::string> groups = {"D", "A", "E", "B", "A", "C", "F", "B", "C", "A"};
  const std::vector<std::int64_t> labels = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    const auto fold = stratified_group_kfold(groups, labels, 2, seed);
    CAPTURE(seed);
    CHECK(fold[1] != fold[3]);  // A, B apart
    CHECK(fold[3] == fold[5]);  // C with B
    CHECK(fold[0] == fold[1]);  // D with A
    CHECK(fold[2] != fold[6]);  // E, F apart
  }
}

TEST_CASE("stratified group k-fold fills every fold when groups are as many as folds",
          "[splits]") {
  // Each group is alone in its class (or shares it): the per-class objective ties between an
  // empty fold and a fold holding other classes; the tie must go to the emptier fold.
  const std::vector<std::string> groups = {"a", "b", "c", "d", "a"};
  for (const std::vector<std::int64_t>& labels :
       {std::vector<std::int64_t>{0, 1, 2, 3, 0}, std::vector<std::int64_t>{0, 0, 1, 1, 0},
        std::vector<std::int64_t>{5, 5, 5, 5, 5}}) {
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      CAPTURE(labels[1], labels[2], seed);
      const auto fold = stratified_group_kfold(groups, labels, 4, seed);
      check_fold_structure(groups, fold, 4);
    }
  }
}

TEST_CASE("stratified group k-fold rejects bad arguments", "[splits]") {
  const std::vector<std::string> groups = {"a", "b", "c", "a"};
  const std::vector<std::int64_t> labels = {0, 1, 0, 0};
  using Catch::Contains;
  CHECK_THROWS_WITH(stratified_group_kfold(groups, labels, 1, 0), Contains("at least 2"));
  CHECK_THROWS_WITH(stratified_group_kfold(groups, labels, 4, 0),
                    Contains("only 3 distinct groups"));
  CHECK_THROWS_WITH(stratified_group_kfold(groups, {0, 1}, 2, 0), Contains("2 labels for 4"));
  CHECK_THROWS_WITH(stratified_group_kfold(groups, {0, 1}, 2, 0, false), Contains("2 labels"));
  CHECK_THROWS_AS(stratified_group_kfold({}, {}, 2, 0), std::invalid_argument);
  CHECK_NOTHROW(stratified_group_kfold(groups, labels, 3, 0));
}

TEST_CASE("holdout split in file order slices like a notebook", "[splits]") {
  std::vector<std::string> groups;
  for (int i = 0; i < 267; ++i) groups.push_back("image-" + std::to_string(i));
  // Python: int(0.6 * 267) = 160, int(0.8 * 267) = 213.
  const auto split = holdout_split(groups, {0.6, 0.2, 0.2}, false, 0);
  REQUIRE(split.train.size() == 160);
  REQUIRE(split.val.size() == 53);
  REQUIRE(split.test.size() == 54);
  for (std::size_t i = 0; i < 160; ++i) CHECK(split.train[i] == i);
  CHECK(split.val.front() == 160);
  CHECK(split.test.front() == 213);
  CHECK(split.test.back() == 266);

  // 0.29 * 100 is 28.999999999999996 in binary: still 29 samples.
  std::vector<std::string> hundred(groups.begin(), groups.begin() + 100);
  const auto guarded = holdout_split(hundred, {0.29, 0.31, 0.4}, false, 0);
  CHECK(guarded.train.size() == 29);
  CHECK(guarded.val.size() == 31);
  CHECK(guarded.test.size() == 40);

  // A zero fraction leaves its side empty even when the others sum to just under 1.
  const auto no_test = holdout_split(hundred, {0.7, 0.2999999, 0.0}, false, 0);
  CHECK(no_test.test.empty());
  CHECK(no_test.train.size() + no_test.val.size() == 100);
}

TEST_CASE("holdout split keeps groups whole, in file order and shuffled", "[splits]") {
  for (std::uint64_t seed : {31u, 32u, 33u}) {
    // Contiguous groups of 1..5 samples, as a file listing a patient's images together.
    std::mt19937_64 rng(seed);
    std::vector<std::string> groups;
    for (int g = 0; groups.size() < 500; ++g) {
      const int size = 1 + static_cast<int>(rng() % 5);
      for (int i = 0; i < size; ++i) groups.push_back("g" + std::to_string(g));
    }
    const double n = static_cast<double>(groups.size());
    for (bool shuffle : {false, true}) {
      CAPTURE(seed, shuffle);
      const auto split = holdout_split(groups, {0.6, 0.2, 0.2}, shuffle, seed);
      // Every sample on exactly one side, each group on one side.
      std::map<std::string, int> side_of_group;
      std::set<std::size_t> seen;
      int side = 0;
      for (const auto* part : {&split.train, &split.val, &split.test}) {
        CHECK(std::is_sorted(part->begin(), part->end()));
        for (std::size_t i : *part) {
          CHECK(seen.insert(i).second);
          auto [it, first] = side_of_group.emplace(groups[i], side);
          CHECK(it->second == side);
        }
        ++side;
      }
      CHECK(seen.size() == groups.size());
      // Each boundary moves by at most half the largest group (5 / 2).
      CHECK(std::abs(static_cast<double>(split.train.size()) - std::floor(0.6 * n)) <= 2.5);
      CHECK(std::abs(static_cast<double>(split.train.size() + split.val.size()) -
                     std::floor(0.8 * n)) <= 2.5);
      if (!shuffle) {
        // File order: train is a prefix, test a suffix.
        CHECK(split.train.back() < split.val.front());
        CHECK(split.val.back() < split.test.front());
        CHECK(split.train.front() == 0);
      } else {
        CHECK(holdout_split(groups, {0.6, 0.2, 0.2}, true, seed).train == split.train);
        CHECK(holdout_split(groups, {0.6, 0.2, 0.2}, true, seed + 100).train != split.train);
        CHECK(split.train.back() > split.val.front());  // not a prefix any more
      }
    }
  }
}

TEST_CASE("holdout split rejects bad fractions", "[splits]") {
  const std::vector<std::string> groups = {"a", "b", "c"};
  using Catch::Contains;
  CHECK_THROWS_WITH(holdout_split(groups, {0.6, 0.2}, false, 0), Contains("need 3"));
  CHECK_THROWS_WITH(holdout_split(groups, {0.6, 0.2, 0.1}, false, 0), Contains("sum to"));
  CHECK_THROWS_WITH(holdout_split(groups, {1.2, -0.2, 0.0}, false, 0), Contains("outside [0, 1]"));
  CHECK_THROWS_WITH(holdout_split({}, {0.6, 0.2, 0.2}, false, 0), Contains("no samples"));
}

TEST_CASE("stratified group k-fold on the real RSNA patients", "[splits][shared-data]") {
  CHESTLAB_REQUIRE_SHARED_DATA(dir);
  const auto labels = chestlab::read_rsna_labels((dir / "rsna" / "stage_2_train_labels.csv").string(),
                                                 (dir / "rsna" / "stage_2_detailed_class_info.csv").string(),
                                                 "");
  // One sample per label row (a patient with 3 boxes is a group of 3), stratified by the
  // patient's 3-class label.
  Samples rows;
  for (const auto& p : labels.patients)
    for (std::size_t r = 0; r < std::max<std::size_t>(1, p.boxes.size()); ++r) {
      rows.groups.push_back(p.patient_id);
      rows.labels.push_back(p.class_index);
    }
  REQUIRE(rows.groups.size() == 30227);

  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> fold = stratified_group_kfold(rows.groups, rows.labels, 5, 2018);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("stratified_group_kfold on 30,227 rows / 26,684 patients took " << seconds << " s");
  CHECK(seconds < 5.0);

  check_fold_structure(rows.groups, fold, 5);
  for (const auto& [label, counts] : per_class_fold_counts(rows.labels, fold, 5)) {
    CAPTURE(label, counts[0], counts[1], counts[2], counts[3], counts[4]);
    const auto largest = *std::max_element(counts.begin(), counts.end());
    CHECK(static_cast<double>(spread(counts)) <= 0.01 * static_cast<double>(largest));
  }
}

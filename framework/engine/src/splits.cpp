#include "chestlab/engine/splits.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace chestlab {

namespace {

// ---- portable randomness ------------------------------------------------------------------

// Uniform integer in [0, n), by rejection so that no value is favoured (plain `r % n` would
// favour small values when 2^64 is not a multiple of n).
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t excess = (kMax % n + 1) % n;  // 2^64 mod n
  std::uint64_t r = rng();
  while (r > kMax - excess) r = rng();
  return r % n;
}

template <class T>
void fisher_yates_shuffle(std::vector<T>& items, std::mt19937_64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(uniform_below(rng, i));
    std::swap(items[i - 1], items[j]);
  }
}

// ---- groups -------------------------------------------------------------------------------

// Groups numbered 0..count-1 in order of first appearance, and the group of each sample.
struct GroupIndex {
  std::vector<std::size_t> group_of_sample;
  std::vector<std::vector<std::size_t>> members;  // sample indices of each group, ascending

  std::size_t count() const { return members.size(); }
};

GroupIndex index_groups(const std::vector<std::string>& groups) {
  GroupIndex index;
  index.group_of_sample.reserve(groups.size());
  std::unordered_map<std::string, std::size_t> number_of;
  number_of.reserve(groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i) {
    auto [it, inserted] = number_of.emplace(groups[i], index.members.size());
    if (inserted) index.members.emplace_back();
    index.members[it->second].push_back(i);
    index.group_of_sample.push_back(it->second);
  }
  return index;
}

// Dense class numbers 0..C-1 of the distinct label values, in ascending label order.
std::vector<int> dense_classes(const std::vector<std::int64_t>& labels, int& class_count) {
  std::map<std::int64_t, int> number_of;
  for (std::int64_t label : labels) number_of.emplace(label, 0);
  int next = 0;
  for (auto& entry : number_of) entry.second = next++;
  class_count = next;
  std::vector<int> classes;
  classes.reserve(labels.size());
  for (std::int64_t label : labels) classes.push_back(number_of[label]);
  return classes;
}

void validate_kfold_arguments(const std::vector<std::string>& groups,
                              const std::vector<std::int64_t>& labels, int folds, bool stratify,
                              std::size_t group_count) {
  if (stratify && labels.size() != groups.size())
    throw std::invalid_argument(fmt::format(
        "stratified_group_kfold: {} labels for {} samples (need one label per sample)",
        labels.size(), groups.size()));
  if (!stratify && !labels.empty() && labels.size() != groups.size())
    throw std::invalid_argument(fmt::format(
        "stratified_group_kfold: {} labels for {} samples (give one per sample, or none "
        "when not stratifying)",
        labels.size(), groups.size()));
  if (folds < 2)
    throw std::invalid_argument(
        fmt::format("stratified_group_kfold: folds = {}, need at least 2", folds));
  if (static_cast<std::size_t>(folds) > group_count)
    throw std::invalid_argument(fmt::format(
        "stratified_group_kfold: folds = {} but there are only {} distinct groups; every fold "
        "needs at least one group",
        folds, group_count));
  // The fold statistics below are exact integers: folds * n^2 must fit in 63 bits.
  const long double n = static_cast<long double>(groups.size());
  if (static_cast<long double>(folds) * n * n > 9.0e18L)
    throw std::invalid_argument(fmt::format(
        "stratified_group_kfold: {} samples in {} folds is beyond the supported size",
        groups.size(), folds));
}

// ---- greedy fold assignment ---------------------------------------------------------------

// Per-class sample counts of every fold, plus the per-class sums needed to evaluate the
// standard deviation of per-fold counts exactly: for class c with per-fold counts n_ic,
//   folds^2 * variance_c = folds * sum_i n_ic^2 - (sum_i n_ic)^2,
// an integer. Exact integers make ties exact, so tie-breaking never depends on rounding.
class FoldBalancer {
 public:
  FoldBalancer(int folds, int classes, std::vector<std::int64_t> class_totals)
      : folds_(folds),
        classes_(classes),
        class_totals_(std::move(class_totals)),
        counts_(static_cast<std::size_t>(folds) * classes, 0),
        sum_squares_(classes, 0),
        assigned_(classes, 0),
        fold_sizes_(folds, 0) {}

  // The fold whose choice minimises the mean over classes of the std of the per-class fold
  // proportions n_ic / N_c, ties to the fold with fewer samples, then to the lower index.
  // Classes absent from the group contribute the same term whatever the fold, so they are
  // left out of the comparison (the ranking is unchanged, the arithmetic more precise).
  int best_fold(const std::int64_t* group_counts) const {
    int best = 0;
    double best_cost = std::numeric_limits<double>::infinity();
    for (int fold = 0; fold < folds_; ++fold) {
      const double cost = cost_if_added(fold, group_counts);
      const bool better = cost < best_cost ||
                          (cost == best_cost && fold_sizes_[fold] < fold_sizes_[best]);
      if (better) {
        best = fold;
        best_cost = cost;
      }
    }
    return best;
  }

  void add(int fold, const std::int64_t* group_counts) {
    for (int c = 0; c < classes_; ++c) {
      const std::int64_t g = group_counts[c];
      std::int64_t& n = counts_[index(fold, c)];
      sum_squares_[c] += 2 * g * n + g * g;
      assigned_[c] += g;
      n += g;
      fold_sizes_[fold] += g;
    }
  }

 private:
  double cost_if_added(int fold, const std::int64_t* group_counts) const {
    double cost = 0.0;
    for (int c = 0; c < classes_; ++c) {
      const std::int64_t g = group_counts[c];
      if (g == 0) continue;
      const std::int64_t n = counts_[index(fold, c)];
      const std::int64_t squares = sum_squares_[c] + 2 * g * n + g * g;
      const std::int64_t total = assigned_[c] + g;
      const std::int64_t scaled_variance = folds_ * squares - total * total;
      cost += std::sqrt(static_cast<double>(scaled_variance)) /
              static_cast<double>(class_totals_[c]);
    }
    return cost;
  }

  std::size_t index(int fold, int c) const {
    return static_cast<std::size_t>(fold) * classes_ + c;
  }

  int folds_;
  int classes_;
  std::vector<std::int64_t> class_totals_;
  std::vector<std::int64_t> counts_;       // [fold][class]
  std::vector<std::int64_t> sum_squares_;  // per class: sum over folds of count^2
  std::vector<std::int64_t> assigned_;     // per class: samples assigned so far
  std::vector<std::int64_t> fold_sizes_;
};

// Groups in the order they are placed: shuffled with the seed, then stably sorted by the
// spread of their class counts (classes * sum g_c^2 - (sum g_c)^2, an integer monotone in
// the std scikit-learn sorts by), largest first. Equal spreads go larger group first, which
// is what makes the unstratified (one-class) case "largest group first" and keeps
// scikit-learn's order wherever its spreads differ.
std::vector<std::size_t> placement_order(const std::vector<std::int64_t>& group_counts,
                                         std::size_t group_count, int classes,
                                         std::uint64_t seed) {
  std::vector<std::int64_t> spread(group_count), size(group_count);
  for (std::size_t g = 0; g < group_count; ++g) {
    std::int64_t sum = 0, squares = 0;
    for (int c = 0; c < classes; ++c) {
      const std::int64_t v = group_counts[g * classes + c];
      sum += v;
      squares += v * v;
    }
    spread[g] = classes * squares - sum * sum;
    size[g] = sum;
  }
  std::vector<std::size_t> order = seeded_permutation(group_count, seed);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (spread[a] != spread[b]) return spread[a] > spread[b];
    return size[a] > size[b];
  });
  return order;
}

// ---- holdout ------------------------------------------------------------------------------

void validate_fractions(const std::vector<double>& fractions) {
  if (fractions.size() != 3)
    throw std::invalid_argument(fmt::format(
        "holdout_split: {} fractions given, need 3 (train, val, test)", fractions.size()));
  double sum = 0.0;
  for (double f : fractions) {
    if (!std::isfinite(f) || f < 0.0 || f > 1.0)
      throw std::invalid_argument(fmt::format(
          "holdout_split: fraction {} is outside [0, 1] (fractions {}, {}, {})", f,
          fractions[0], fractions[1], fractions[2]));
    sum += f;
  }
  if (std::fabs(sum - 1.0) > 1e-6)
    throw std::invalid_argument(fmt::format(
        "holdout_split: fractions {}, {}, {} sum to {}, need 1", fractions[0], fractions[1],
        fractions[2], sum));
}

// floor(fraction * n) like Python's int(0.6 * n), but robust to the representation error
// of the fraction (0.29 * 100 is 28.999999999999996 in binary floating point).
std::size_t boundary(double cumulative_fraction, std::size_t n) {
  const double exact = cumulative_fraction * static_cast<double>(n);
  const double guard = 1e-9 + 1e-13 * static_cast<double>(n);
  const double b = std::floor(exact + guard);
  return static_cast<std::size_t>(std::clamp(b, 0.0, static_cast<double>(n)));
}

}  // namespace

std::vector<std::size_t> seeded_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  fisher_yates_shuffle(order, rng);
  return order;
}

std::vector<int> stratified_group_kfold(const std::vector<std::string>& groups,
                                        const std::vector<std::int64_t>& labels, int folds,
                                        std::uint64_t seed, bool stratify) {
  const GroupIndex index = index_groups(groups);
  validate_kfold_arguments(groups, labels, folds, stratify, index.count());

  int classes = 1;
  const std::vector<int> class_of_sample =
      stratify ? dense_classes(labels, classes) : std::vector<int>(groups.size(), 0);

  std::vector<std::int64_t> group_counts(index.count() * classes, 0);
  std::vector<std::int64_t> class_totals(classes, 0);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    ++group_counts[index.group_of_sample[i] * classes + class_of_sample[i]];
    ++class_totals[class_of_sample[i]];
  }

  FoldBalancer balancer(folds, classes, std::move(class_totals));
  std::vector<int> fold_of_group(index.count(), -1);
  for (std::size_t g : placement_order(group_counts, index.count(), classes, seed)) {
    const std::int64_t* counts = &group_counts[g * classes];
    const int fold = balancer.best_fold(counts);
    balancer.add(fold, counts);
    fold_of_group[g] = fold;
  }

  std::vector<int> fold_of_sample(groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i)
    fold_of_sample[i] = fold_of_group[index.group_of_sample[i]];
  return fold_of_sample;
}

HoldoutSplit holdout_split(const std::vector<std::string>& groups,
                           const std::vector<double>& fractions, bool shuffle,
                           std::uint64_t seed) {
  if (groups.empty()) throw std::invalid_argument("holdout_split: no samples to split");
  validate_fractions(fractions);

  const GroupIndex index = index_groups(groups);
  const std::size_t n = groups.size();
  // A zero test fraction must leave test empty even when train + val is 1 - 1e-7.
  const double val_end = fractions[2] == 0.0 ? 1.0 : fractions[0] + fractions[1];
  const std::size_t train_end = boundary(fractions[0], n);
  const std::size_t validation_end = std::max(train_end, boundary(val_end, n));

  std::vector<std::size_t> order(index.count());
  if (shuffle) {
    order = seeded_permutation(index.count(), seed);
  } else {
    for (std::size_t g = 0; g < order.size(); ++g) order[g] = g;
  }

  HoldoutSplit split;
  std::size_t position = 0;  // samples placed before this group
  for (std::size_t g : order) {
    const std::vector<std::size_t>& members = index.members[g];
    // The group's middle is position + size / 2; compare doubled to stay in integers.
    const std::size_t doubled_middle = 2 * position + members.size();
    std::vector<std::size_t>& side = doubled_middle < 2 * train_end        ? split.train
                                     : doubled_middle < 2 * validation_end ? split.val
                                                                           : split.test;
    side.insert(side.end(), members.begin(), members.end());
    position += members.size();
  }
  for (auto* side : {&split.train, &split.val, &split.test}) std::sort(side->begin(), side->end());
  return split;
}

}  // namespace chestlab

// Train/validation splits that keep every group (e.g. every patient) on one side:
// stratified group k-fold and ordered or shuffled holdout splits. Torch-free.
//
// Reproducibility across machines matters (a fold written in a run file must be the same fold
// on another computer), so every random decision comes from std::mt19937_64, whose output
// sequence the C++ standard fixes, through our own Fisher-Yates shuffle: std::shuffle and
// std::uniform_int_distribution are implementation-defined and differ between libstdc++,
// libc++ and MSVC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace chestlab {

// A permutation of 0..n-1, the same for the same (n, seed) on every platform.
std::vector<std::size_t> seeded_permutation(std::size_t n, std::uint64_t seed);

// Fold index (0..folds-1) of each sample, deterministic from `seed`. Every group lies in
// exactly one fold and every fold receives at least one group.
//
// The algorithm is scikit-learn's StratifiedGroupKFold(shuffle=True): the groups, in an order
// shuffled with the seed (only to break ties), are stably sorted by the spread of their
// per-class sample counts, largest first; each is then assigned to the fold that minimises
// the mean over classes of the standard deviation of that class's per-fold proportions, ties
// going to the fold with fewer samples (then the lower index). A group with mixed labels
// counts every one of its samples. Guarantee (tested): when every group carries one label,
// each class's per-fold counts differ by at most the largest group of that class.
//
// With stratify == false the labels are ignored (they may be empty) and groups are placed,
// largest first, into the fold with fewest samples, so fold sizes differ by at most the
// largest group size.
//
// Throws std::invalid_argument unless 2 <= folds <= number of distinct groups and labels has
// one entry per sample (when stratifying).
std::vector<int> stratified_group_kfold(const std::vector<std::string>& groups,
                                        const std::vector<std::int64_t>& labels, int folds,
                                        std::uint64_t seed, bool stratify = true);

// Sample indices of each side of a holdout split, ascending within each side.
struct HoldoutSplit {
  std::vector<std::size_t> train, val, test;
};

// `fractions` = {train, val, test}, each in [0, 1], summing to 1 (within 1e-6).
// shuffle == false keeps the dataset order, as a classic notebook slicing its arrays does:
// with one sample per group, train is exactly the first floor(train * n) samples and val the
// next floor((train + val) * n) - floor(train * n), like Python's int(0.6 * n). Groups are
// never cut: a group goes to the side in which its middle falls, so each of the two
// boundaries moves by at most half the largest group. shuffle == true does the same on the
// groups taken in an order shuffled with `seed`.
// Throws std::invalid_argument on empty input or invalid fractions.
HoldoutSplit holdout_split(const std::vector<std::string>& groups,
                           const std::vector<double>& fractions, bool shuffle,
                           std::uint64_t seed);

}  // namespace chestlab

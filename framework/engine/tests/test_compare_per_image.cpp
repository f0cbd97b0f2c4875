// Per-image values in `compare` (compare.h): the summary of one run, two runs paired image by
// image by (fold, id) with the Wilcoxon signed-rank test, and the errors for a run or metric
// without per-image values. Run files are written through RunFile/RunWriter, as the trainer
// writes them.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <optional>

#include "chestlab/engine/compare.h"
#include "chestlab/engine/runfile.h"
#include "chestlab/errors.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

struct FoldSpec {
  std::vector<std::string> ids;
  std::vector<double> values;  // of the metric, one per id
  FoldStatus status = FoldStatus::Complete;
};

// A run file with one fold per spec (the fold's validation is `ids`; its per-image values
// `values` of `metric`, at the best epoch 0) and, when given, a test part.
RunInfo per_image_run(const fs::path& path, const std::string& id, const std::vector<FoldSpec>& folds,
                      const std::optional<FoldSpec>& test = std::nullopt, const std::string& metric = "dice",
                      const std::string& config = "") {
  RunMeta meta;
  meta.experiment = "pi";
  meta.run_id = id;
  meta.monitor = metric;
  RunFile f = RunFile::create(path.string(), meta, config, Environment{});
  f.transaction([&](RunWriter& w) {
    for (int k = 0; k < static_cast<int>(folds.size()); ++k) {
      const FoldSpec& spec = folds[static_cast<std::size_t>(k)];
      double mean = 0;
      for (double v : spec.values) mean += v / static_cast<double>(spec.values.size());
      w.begin_fold(k, {metric}, {"train"}, spec.ids);
      HistoryRow row;
      row.epoch = 0;
      row.metrics = {mean};
      w.append_epoch(k, row);
      w.set_fold_best(k, 0, mean, {});
      if (!spec.ids.empty()) w.set_fold_per_image(k, 0, PerImageScores{spec.ids, {metric}, {spec.values}});
      w.set_fold_status(k, spec.status);
    }
    if (test) {
      double mean = 0;
      for (double v : test->values) mean += v / static_cast<double>(test->values.size());
      w.write_test({{metric, mean}});
      w.write_test_per_image(PerImageScores{test->ids, {metric}, {test->values}});
    }
    w.set_status(RunStatus::Complete);
  });
  return read_run(path.string(), LoadWeights::No);
}

// The hand-made pair of runs of the paired test. Fold 0 holds p1..p4 in both, B's in reverse
// order; fold 1 holds q1..q3 in both (B's first two swapped), q4 only in A and q5 only in B.
//   image   A      B      A - B
//   p1      1.0    1.0    0        (tied: dropped by the test)
//   p2      0.75   0.5    +0.25
//   p3      0.5    0.75   -0.25
//   p4      1.0    0.5    +0.5
//   q1      0.875  0.375  +0.5
//   q2      0.25   0.0    +0.25
//   q3      0.0    1.0    -1.0
// (all exact in binary, so equal |differences| are exactly equal).
RunInfo run_a(const fs::path& dir) {
  return per_image_run(dir / "a.h5", "run-a",
                       {{{"p1", "p2", "p3", "p4"}, {1.0, 0.75, 0.5, 1.0}},
                        {{"q1", "q2", "q3", "q4"}, {0.875, 0.25, 0.0, 0.5}}},
                       FoldSpec{{"t1", "t2", "t3"}, {0.5, 0.25, 1.0}});
}
RunInfo run_b(const fs::path& dir) {
  return per_image_run(dir / "b.h5", "run-b",
                       {{{"p4", "p3", "p2", "p1"}, {0.5, 0.75, 0.5, 1.0}},
                        {{"q2", "q1", "q3", "q5"}, {0.0, 0.375, 1.0, 0.25}}},
                       FoldSpec{{"t3", "t2", "t1"}, {1.0, 0.25, 0.5}});
}

const PerImagePair* pair_of(const PerImagePartComparison& part, const std::string& id) {
  for (const PerImagePair& p : part.pairs)
    if (p.id == id) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("per-image paired comparison: pairs by (fold, id), counts and the Wilcoxon test by hand",
          "[compare][per_image]") {
  const fs::path dir = test::scratch_dir("per_image_paired");
  const RunInfo a = run_a(dir), b = run_b(dir);
  REQUIRE(a.folds[0].per_image.ids.size() == 4);  // the run file keeps them
  const PerImageComparison c = compare_per_image(a, b, "dice");
  CHECK(c.run_a == "pi/run-a");
  CHECK(c.maximize);
  REQUIRE(c.validation);
  const PerImagePartComparison& v = *c.validation;
  CHECK(v.folds == std::vector<int>{0, 1});
  REQUIRE(v.pairs.size() == 7);
  CHECK(v.only_a == 1);  // q4
  CHECK(v.only_b == 1);  // q5
  CHECK(v.non_finite == 0);
  // Paired by id, not by position: B's p4 is its first image.
  const PerImagePair* p4 = pair_of(v, "p4");
  REQUIRE(p4);
  CHECK(p4->fold == 0);
  CHECK(p4->a == 1.0);
  CHECK(p4->b == 0.5);
  CHECK(p4->diff == 0.5);
  CHECK(pair_of(v, "q1")->b == 0.375);
  CHECK_FALSE(pair_of(v, "q4"));
  // Means: A (1 + .75 + .5 + 1 + .875 + .25 + 0) / 7 = 4.375 / 7 = 0.625; B 4.125 / 7; A - B 0.25 / 7.
  CHECK(v.mean_a == Approx(0.625).epsilon(1e-12));
  CHECK(v.mean_b == Approx(4.125 / 7).epsilon(1e-12));
  CHECK(v.mean_diff == Approx(0.25 / 7).epsilon(1e-12));
  // Higher is better: A better on p2 p4 q1 q2, B on p3 q3, tied on p1.
  CHECK(v.a_better == 4);
  CHECK(v.b_better == 2);
  CHECK(v.tied == 1);
  // Wilcoxon: p1's zero dropped, n = 6. |d| 0.25 x3 (p2 p3 q2) share ranks 1..3 -> 2 each;
  // 0.5 x2 (p4 q1) ranks 4, 5 -> 4.5; 1.0 (q3) rank 6. W+ = 2 + 4.5 + 4.5 + 2 = 13,
  // W- = 2 + 6 = 8 (sum 21 = 6 * 7 / 2). Mean n(n+1)/4 = 10.5; variance 6*7*13/24 = 22.75
  // less (3^3 - 3 + 2^3 - 2) / 48 = 0.625: 22.125. z = (13 - 10.5) / sqrt(22.125) = 0.53149400,
  // p = 2 (1 - Phi(z)) = erfc(z / sqrt 2) = 0.59507650; scipy.stats.wilcoxon(A, B,
  // correction=False, mode='approx') (scipy 1.10.1) gives statistic=8.0, pvalue=0.5950764956239487.
  const WilcoxonResult& w = v.wilcoxon;
  CHECK(w.tested);
  CHECK(w.n == 6);
  CHECK(w.zeros == 1);
  CHECK(w.w_plus == 13.0);
  CHECK(w.w_minus == 8.0);
  CHECK(w.statistic == 8.0);
  CHECK(w.z == Approx(0.5314940034527339).epsilon(1e-12));
  CHECK(w.p == Approx(0.5950764956239487).epsilon(1e-12));
  // The test part: t1 0.5 - 0.5, t2 0.25 - 0.25, t3 1.0 - 1.0: every pair tied, no test.
  REQUIRE(c.test);
  CHECK(c.test->pairs.size() == 3);
  CHECK(c.test->tied == 3);
  CHECK(c.test->pairs[0].fold == -1);
  CHECK_FALSE(c.test->wilcoxon.tested);
  CHECK(c.test->wilcoxon.zeros == 3);
  CHECK(c.test->wilcoxon.p == 1.0);

  const std::string table = render_per_image_paired(c, CompareFormat::Table);
  CHECK_THAT(table, Contains("per-image paired comparison of dice: A = pi/run-a, B = pi/run-b (higher is better)"));
  CHECK_THAT(table, Contains("W = 8 (W+ = 13, W- = 8), n = 6 non-zero of 7 pairs, z = +0.5315, p = 0.5951"));
  CHECK_THAT(table, Contains("validation: 1 image(s) only in A and 1 only in B: not paired"));
  CHECK_THAT(table, Contains("test: no Wilcoxon test: every pair is tied"));
  CHECK_THAT(table, Contains("+0.0357"));
  const std::string csv = render_per_image_paired(c, CompareFormat::Csv);
  CHECK_THAT(csv, Catch::StartsWith("metric,part,stat,value\n"));
  CHECK_THAT(csv, Contains("dice,validation,folds,0;1\n"));
  CHECK_THAT(csv, Contains("dice,validation,n_pairs,7\n"));
  CHECK_THAT(csv, Contains("dice,validation,only_b,1\n"));
  CHECK_THAT(csv, Contains("dice,validation,wilcoxon_w,8\n"));
  CHECK_THAT(csv, Contains("dice,validation,wilcoxon_p,0.5951\n"));
  CHECK_THAT(csv, Contains("dice,test,tied,3\n"));
  const std::string md = render_per_image_paired(c, CompareFormat::Markdown);
  CHECK_THAT(md, Contains("| part | folds | pairs | mean A |"));
  CHECK_THAT(md, Contains("| validation | 0, 1 | 7 | 0.6250 | 0.5893 | +0.0357 | 4 | 2 | 1 | 1 | 1 |"));

  SECTION("reversed: the rank sums swap, z changes sign, p stays") {
    const PerImageComparison r = compare_per_image(b, a, "dice");
    CHECK(r.validation->wilcoxon.w_plus == 8.0);
    CHECK(r.validation->wilcoxon.w_minus == 13.0);
    CHECK(r.validation->wilcoxon.z == Approx(-0.5314940034527339).epsilon(1e-12));
    CHECK(r.validation->wilcoxon.p == Approx(w.p).epsilon(1e-14));
    CHECK(r.validation->a_better == 2);
    CHECK(r.validation->b_better == 4);
  }
}

TEST_CASE("Wilcoxon signed-rank: scipy's numbers, no ties, and nothing to rank", "[compare][per_image]") {
  // 30 pairs in sixteenths: a_i = ((7 i) mod 17) / 16, b_i = ((5 i) mod 13) / 16. One zero
  // difference (i = 0), 29 ranked with many ties (sum of t^3 - t = 216). scipy 1.10.1:
  // wilcoxon(a, b, correction=False, mode='approx') = (statistic=138.0,
  // pvalue=0.08527699123187012); W+ = 297, variance 29*30*59/24 - 216/48 = 2134.25,
  // z = (297 - 217.5) / sqrt(2134.25) = 1.720855814612112.
  std::vector<double> diffs;
  for (int i = 0; i < 30; ++i) diffs.push_back(((7 * i) % 17) / 16.0 - ((5 * i) % 13) / 16.0);
  const WilcoxonResult r = wilcoxon_signed_rank(diffs);
  CHECK(r.n == 29);
  CHECK(r.zeros == 1);
  CHECK(r.w_plus == 297.0);
  CHECK(r.w_minus == 138.0);
  CHECK(r.statistic == 138.0);
  CHECK(r.z == Approx(1.720855814612112).epsilon(1e-12));
  CHECK(r.p == Approx(0.08527699123187012).epsilon(1e-12));

  // 1..5, no ties: W+ = 15, W- = 0, z = 7.5 / sqrt(5*6*11/24 = 13.75) = 2.0225995873897262,
  // p = 0.043114446783075355 (scipy, as above).
  const WilcoxonResult s = wilcoxon_signed_rank({1, 2, 3, 4, 5});
  CHECK(s.statistic == 0.0);
  CHECK(s.z == Approx(2.0225995873897262).epsilon(1e-12));
  CHECK(s.p == Approx(0.043114446783075355).epsilon(1e-12));

  CHECK_FALSE(wilcoxon_signed_rank({}).tested);
  const WilcoxonResult zeros = wilcoxon_signed_rank({0, 0});
  CHECK_FALSE(zeros.tested);
  CHECK(zeros.zeros == 2);
  CHECK(zeros.p == 1.0);
}

TEST_CASE("per-image summary of one run: numbers, worst images, the test part", "[compare][per_image]") {
  const fs::path dir = test::scratch_dir("per_image_summary");
  const RunInfo a = run_a(dir);
  CHECK(per_image_metrics(a) == std::vector<std::string>{"dice"});
  // Validation values 1, .75, .5, 1, .875, .25, 0, .5: sorted 0 .25 .5 .5 .75 .875 1 1;
  // mean 4.875 / 8 = 0.609375, median (.5 + .75) / 2 = 0.625, 2 of 8 at 1, 1 of 8 at 0.
  const PerImageSummary s = summarize_per_image(a, "dice", PerImagePart::Validation, 3);
  CHECK(s.run == "pi/run-a");
  CHECK(s.folds == std::vector<int>{0, 1});
  CHECK(s.n == 8);
  CHECK(s.values.size() == 8);
  CHECK(s.mean == 0.609375);
  CHECK(s.median == 0.625);
  CHECK(s.min == 0.0);
  CHECK(s.max == 1.0);
  CHECK(s.share_one == 0.25);
  CHECK(s.share_zero == 0.125);
  // Worst 3 (higher is better): q3 0, q2 0.25, then the first 0.5: p3 of fold 0 before q4.
  REQUIRE(s.worst.size() == 3);
  CHECK(s.worst[0].fold == 1);
  CHECK(s.worst[0].id == "q3");
  CHECK(s.worst[0].value == 0.0);
  CHECK(s.worst[1].id == "q2");
  CHECK(s.worst[2].fold == 0);
  CHECK(s.worst[2].id == "p3");

  const std::vector<PerImageSummary> all = summarize_per_image(a, 2);
  REQUIRE(all.size() == 2);  // dice: validation, then test
  CHECK(all[0].part == PerImagePart::Validation);
  CHECK(all[0].worst.size() == 2);
  CHECK(all[1].part == PerImagePart::Test);
  CHECK(all[1].n == 3);
  CHECK(all[1].median == 0.5);
  CHECK(all[1].worst[0].fold == -1);
  CHECK(all[1].worst[0].id == "t2");

  const std::string table = render_per_image_summaries(all, CompareFormat::Table);
  CHECK_THAT(table, Contains("per-image values of pi/run-a"));
  CHECK_THAT(table, Contains("dice    validation, folds 0, 1       8  0.6094  0.6250  0.0000  1.0000  25.0%  12.5%"));
  CHECK_THAT(table, Contains("worst 2 of dice (validation; higher is better)"));
  CHECK_THAT(table, Contains("1     q3  0.0000"));
  const std::string csv = render_per_image_summaries(all, CompareFormat::Csv);
  CHECK_THAT(csv, Catch::StartsWith("run,metric,part,stat,fold,id,value\n"));
  CHECK_THAT(csv, Contains("pi/run-a,dice,validation,n_images,,,8\n"));
  CHECK_THAT(csv, Contains("pi/run-a,dice,validation,median,,,0.6250\n"));
  CHECK_THAT(csv, Contains("pi/run-a,dice,validation,share_zero,,,0.1250\n"));
  CHECK_THAT(csv, Contains("pi/run-a,dice,validation,worst,1,q3,0.0000\n"));
  CHECK_THAT(csv, Contains("pi/run-a,dice,test,worst,test,t2,0.2500\n"));
  const std::string md = render_per_image_summaries(all, CompareFormat::Markdown);
  CHECK_THAT(md, Contains("### per-image values of pi/run-a"));
  CHECK_THAT(md, Contains("| dice | validation, folds 0, 1 | 8 | 0.6094 | 0.6250 | 0.0000 | 1.0000 | 25.0% | 12.5% |"));
  CHECK_THAT(md, Contains("| 1 | q3 | 0.0000 |"));

  SECTION("a fold not finished is left out and named; values not finite are counted") {
    const RunInfo r = per_image_run(dir / "partial.h5", "partial",
                                    {{{"x1", "x2", "x3"}, {0.5, std::nan(""), 1.0}},
                                     {{"y1"}, {0.0}, FoldStatus::Running}});
    const PerImageSummary p = summarize_per_image(r, "dice", PerImagePart::Validation, 5);
    CHECK(p.folds == std::vector<int>{0});
    CHECK(p.unfinished_folds == std::vector<int>{1});
    CHECK(p.n == 2);
    CHECK(p.non_finite == 1);
    CHECK(p.mean == 0.75);
    CHECK(p.worst.size() == 2);
    const std::string text = render_per_image_summaries({p}, CompareFormat::Table);
    CHECK_THAT(text, Contains("fold(s) 1 not finished, left out"));
    CHECK_THAT(text, Contains("1 value(s) not finite, left out"));
  }
}

TEST_CASE("per-image values of a metric where lower is better: worst and better follow its mode",
          "[compare][per_image]") {
  const fs::path dir = test::scratch_dir("per_image_min");
  const std::string config = "[[metrics]]\nplugin = \"err\"\nname = \"err\"\nmode = \"min\"\n";
  const RunInfo a = per_image_run(dir / "a.h5", "a", {{{"i1", "i2", "i3"}, {0.1, 0.3, 0.2}}}, std::nullopt, "err", config);
  const RunInfo b = per_image_run(dir / "b.h5", "b", {{{"i1", "i2", "i3"}, {0.2, 0.2, 0.2}}}, std::nullopt, "err", config);
  // The monitor's mode is "max" in RunMeta by default; the [[metrics]] mode decides for a
  // metric that is not the monitor, so compare under another monitor.
  RunInfo a2 = a, b2 = b;
  a2.meta.monitor = b2.meta.monitor = "loss";
  CHECK_FALSE(metric_maximized(a2, "err"));
  const PerImageComparison c = compare_per_image(a2, b2, "err");
  CHECK_FALSE(c.maximize);
  CHECK(c.validation->a_better == 1);  // i1: 0.1 < 0.2
  CHECK(c.validation->b_better == 1);  // i2
  CHECK(c.validation->tied == 1);      // i3
  CHECK_THAT(render_per_image_paired(c, CompareFormat::Table), Contains("(lower is better)"));
  const PerImageSummary s = summarize_per_image(a2, "err", PerImagePart::Validation, 1);
  REQUIRE(s.worst.size() == 1);
  CHECK(s.worst[0].id == "i2");  // the highest error
}

TEST_CASE("per-image: a run or metric without them is an error naming the run and what it has",
          "[compare][per_image]") {
  const fs::path dir = test::scratch_dir("per_image_missing");
  const RunInfo a = run_a(dir);
  // A run file as written before per-image values existed: folds without /per_image.
  const RunInfo old = per_image_run(dir / "old.h5", "old", {{{}, {}}, {{}, {}}});
  CHECK(old.folds.size() == 2);
  CHECK(old.folds[0].per_image.empty());
  CHECK(old.test_per_image.empty());
  CHECK(per_image_metrics(old).empty());
  CHECK(summarize_per_image(old).empty());

  try {
    compare_per_image(a, old, "dice");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()), Contains("run pi/old has no per-image values of 'dice'"));
    CHECK_THAT(std::string(e.what()), Contains("predates them"));
  }
  try {
    summarize_per_image(a, "mean_iou", PerImagePart::Validation);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()),
               Contains("run pi/run-a has no per-image values of 'mean_iou'; per-image values in pi/run-a: dice"));
  }
  CHECK_THROWS_AS(compare_per_image(a, a, "mean_iou"), ConfigError);
  CHECK_THAT(per_image_missing(old, ""), Contains("run pi/old has no per-image values (none of its metrics"));

  // Values in both runs, but no fold finished in both and no test part in common.
  const RunInfo f0 = per_image_run(dir / "f0.h5", "f0", {{{"x"}, {0.5}, FoldStatus::Interrupted}});
  const RunInfo f1 = per_image_run(dir / "f1.h5", "f1", {{{"x"}, {0.7}}});
  try {
    compare_per_image(f0, f1, "dice");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()), Contains("no finished fold and no test part in common"));
    CHECK_THAT(std::string(e.what()), Contains("folds 0 are not finished in both"));
  }
  // A fold with values in one run only is named, the others are paired.
  const RunInfo two = per_image_run(dir / "two.h5", "two", {{{"x"}, {0.5}}, {{"y"}, {0.5}}});
  const PerImageComparison c = compare_per_image(two, f1, "dice");
  CHECK(c.validation->folds == std::vector<int>{0});
  CHECK(c.folds_only_a == std::vector<int>{1});
  CHECK_THAT(render_per_image_paired(c, CompareFormat::Table), Contains("fold(s) 1: per-image values only in A"));
}

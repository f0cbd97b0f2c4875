// The RSNA metric and submission files, on cases computed by hand.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "chestlab/errors.h"
#include "chestlab/rsna/metric.h"
#include "chestlab/rsna/submission.h"
#include "support.h"

using chestlab::Box;
using chestlab::ScoredBox;
using namespace chestlab::rsna;

namespace {

// A 10x10 box whose left edge is at `x`: two of them shifted by s overlap with
// IoU (10 - s) / (10 + s): s=2 -> 2/3, s=3 -> 7/13 = 0.538, s=5 -> 1/3.
Box square_at(double x) { return Box{x, 0, 10, 10}; }

double score_of(const std::vector<Box>& truth, const std::vector<ScoredBox>& preds) {
  auto s = image_score(truth, preds);
  REQUIRE(s.has_value());
  return *s;
}

}  // namespace

TEST_CASE("RSNA thresholds are 0.40 to 0.75 without float drift", "[rsna_map]") {
  const auto& t = map_thresholds();
  REQUIRE(t.size() == 8);
  const double expected[] = {0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75};
  for (std::size_t i = 0; i < 8; ++i) CHECK(t[i] == expected[i]);  // exact, not Approx
}

TEST_CASE("RSNA metric: perfect match scores 1", "[rsna_map]") {
  const std::vector<Box> truth{{100, 150, 200, 300}, {600, 100, 150, 250}};
  const std::vector<ScoredBox> preds{{0.9, {600, 100, 150, 250}}, {0.8, {100, 150, 200, 300}}};
  CHECK(score_of(truth, preds) == 1.0);
}

TEST_CASE("RSNA metric: empty images", "[rsna_map]") {
  SECTION("no truth and no predictions is skipped") {
    CHECK_FALSE(image_score({}, {}).has_value());
    RsnaMapAccumulator acc;
    acc.add({}, {});
    const MapResult r = acc.result();
    CHECK(r.images_counted == 0);
    CHECK(r.images_skipped == 1);
    CHECK(r.score == 0.0);
  }
  SECTION("a prediction on an image without truth scores 0") {
    CHECK(score_of({}, {{0.99, {10, 10, 50, 50}}}) == 0.0);
  }
  SECTION("truth without predictions scores 0") {
    CHECK(score_of({{10, 10, 50, 50}}, {}) == 0.0);
  }
}

TEST_CASE("RSNA metric: IoU 0.6 matches at thresholds up to 0.60", "[rsna_map]") {
  // truth 10x10, prediction 10x6 inside it: IoU = 60 / 100 = 0.6 exactly.
  // t = 0.40 .. 0.60 (5 thresholds): TP=1 -> 1 each. t = 0.65 .. 0.75 (3): TP=0, FP=1,
  // FN=1 -> 0/2 = 0. Image score = 5/8 = 0.625. (0.40 + 0.05*4 would be
  // 0.6000000000000001 and lose the match at 0.60, giving 4/8.)
  const std::vector<Box> truth{{0, 0, 10, 10}};
  const std::vector<ScoredBox> preds{{0.7, {0, 0, 10, 6}}};
  CHECK(chestlab::iou(truth[0], preds[0].box) == 0.6);
  CHECK(image_precision(truth, preds, 0.60) == 1.0);
  CHECK(image_precision(truth, preds, 0.65) == 0.0);
  CHECK(score_of(truth, preds) == 0.625);
}

TEST_CASE("RSNA metric: IoU exactly at a threshold counts as a match", "[rsna_map]") {
  const std::vector<Box> truth{{0, 0, 10, 10}};
  SECTION("IoU 0.5: TP at 0.40, 0.45, 0.50 -> 3/8") {
    const std::vector<ScoredBox> preds{{0.5, {0, 0, 10, 5}}};  // 50 / 100
    CHECK(image_precision(truth, preds, 0.5) == 1.0);
    CHECK(image_precision(truth, preds, 0.5 + 1e-6) == 0.0);
    CHECK(score_of(truth, preds) == 0.375);
  }
  SECTION("IoU 0.7: TP at 0.40 .. 0.70 -> 7/8") {
    CHECK(score_of(truth, {{0.5, {0, 0, 10, 7}}}) == 0.875);
  }
  SECTION("IoU 0.75: TP at every threshold -> 1") {
    CHECK(score_of(truth, {{0.5, {0, 0, 10, 7.5}}}) == 1.0);
  }
  SECTION("IoU from non-integer coordinates, one rounding step short of 0.55") {
    // A 100x100 truth and a 100x55 prediction (IoU 0.55), both scaled by 1.1: in doubles
    // the IoU comes out as 0.5499999999999999, 0.55 up to rounding noise, so a match.
    const double s = 1.1;
    const Box t{0.0, 0.0, 100 * s, 100 * s};
    const Box p{0.0, 0.0, 100 * s, 55 * s};
    REQUIRE(chestlab::iou(t, p) < 0.55);  // the case really exercises the tolerance
    CHECK(image_precision({t}, {{0.5, p}}, 0.55) == 1.0);
    CHECK(image_precision({t}, {{0.5, p}}, 0.55 + 1e-6) == 0.0);
  }
}

TEST_CASE("RSNA metric: extra predictions are false positives", "[rsna_map]") {
  // At every threshold: TP=1 (the exact box), FP=1 -> 1/2.
  const std::vector<Box> truth{{0, 0, 10, 10}};
  CHECK(score_of(truth, {{0.9, {0, 0, 10, 10}}, {0.8, {500, 500, 10, 10}}}) == 0.5);
}

TEST_CASE("RSNA metric: greedy matching in confidence and truth order", "[rsna_map]") {
  // Truths T1 = square_at(0), T2 = square_at(5). Prediction A = square_at(2): IoU with
  // T1 = 2/3, with T2 = 7/13 ~ 0.538. Prediction B = square_at(0): IoU with T1 = 1, with T2
  // = 1/3.
  const std::vector<Box> truth{square_at(0), square_at(5)};
  const Box a = square_at(2), b = square_at(0);

  SECTION("high-confidence A is taken by T1 although it overlaps T2") {
    // Every threshold: T1 takes A (0.40 .. 0.65: IoU 2/3 >= t) or B (0.70, 0.75), and T2
    // finds nothing (A taken or IoU 0.538 < t; B 1/3) -> TP=1, FP=1, FN=1 -> 1/3 each.
    // Predictions are given low-confidence first: the metric must sort them.
    CHECK(score_of(truth, {{0.5, b}, {0.9, a}}) == Approx(1.0 / 3.0));
  }
  SECTION("with B ranked first T1 takes B and T2 gets A where IoU 0.538 >= t") {
    // t = 0.40, 0.45, 0.50: both TP -> 1. t = 0.55 .. 0.75 (5): T2 unmatched -> 1/3.
    // (3 + 5/3) / 8 = 7/12.
    CHECK(score_of(truth, {{0.9, b}, {0.5, a}}) == Approx(7.0 / 12.0));
  }
  SECTION("truth order matters too: T2 first takes A at t <= 0.50") {
    // t <= 0.50: T2 takes A, T1 takes B -> 1. t >= 0.55: T2 nothing, T1 takes A (t <= 0.65)
    // or B -> 1/3. Again 7/12.
    CHECK(score_of({truth[1], truth[0]}, {{0.5, b}, {0.9, a}}) == Approx(7.0 / 12.0));
  }
  SECTION("equal confidences keep submission order") {
    CHECK(score_of(truth, {{0.7, a}, {0.7, b}}) == Approx(1.0 / 3.0));
    CHECK(score_of(truth, {{0.7, b}, {0.7, a}}) == Approx(7.0 / 12.0));
  }
}

TEST_CASE("RSNA metric: accumulator averages counted images", "[rsna_map]") {
  RsnaMapAccumulator acc;
  acc.add({{0, 0, 10, 10}}, {{0.9, {0, 0, 10, 10}}});  // 1 at every threshold
  acc.add({{0, 0, 10, 10}}, {{0.9, {0, 0, 10, 6}}});   // IoU 0.6: 1 for t <= 0.60, else 0
  acc.add({}, {});                                      // skipped
  acc.add({}, {{0.3, {5, 5, 5, 5}}});                   // 0 at every threshold
  const MapResult r = acc.result();
  CHECK(r.images_counted == 3);
  CHECK(r.images_skipped == 1);
  // (1 + 0.625 + 0) / 3
  CHECK(r.score == Approx(1.625 / 3.0));
  REQUIRE(r.per_threshold.size() == 8);
  for (std::size_t i = 0; i < 5; ++i) CHECK(r.per_threshold[i] == Approx(2.0 / 3.0));
  for (std::size_t i = 5; i < 8; ++i) CHECK(r.per_threshold[i] == Approx(1.0 / 3.0));

  acc.reset();
  CHECK(acc.result().images_counted == 0);
}

// ---- submission files -------------------------------------------------------------------

namespace {

Submission parse_text(const std::string& text) {
  std::istringstream in(text);
  return parse_submission(in, "sub.csv");
}

std::string error_of(const std::string& text) {
  try {
    parse_text(text);
  } catch (const chestlab::DataError& e) {
    return e.what();
  }
  FAIL("no DataError for:\n" << text);
  return {};
}

}  // namespace

TEST_CASE("RSNA submission: format", "[rsna_map]") {
  CHECK(format_prediction_string({}) == "");
  CHECK(format_prediction_string({{0.95126, {264.4, 152.6, 213.0, 379.5}},
                                  {0.5, {-0.3, 10, 20, 30}}}) ==
        "0.9513 264 153 213 380 0.5000 0 10 20 30");
  CHECK(format_prediction_string({{0.5, {1.25, 2, 3, 4}}}, 1) == "0.5000 1.2 2.0 3.0 4.0");
  CHECK_THROWS_AS(format_prediction_string({}, -1), std::invalid_argument);
}

TEST_CASE("RSNA submission: write and read back", "[rsna_map]") {
  const Submission original{
      {"0004cfab-14fd-4e49-80ba-63a80b6bddd6", {{0.9512, {264, 152, 213, 379}}, {0.502, {562, 152, 256, 453}}}},
      {"00313ee0-9eaa-42f4-b0ab-c148ed3241cd", {}},
  };
  const auto dir = chestlab::test::scratch_dir("rsna_submission_roundtrip");
  const auto file = dir / "submission.csv";
  write_submission(file, original);
  {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str() ==
          "patientId,PredictionString\n"
          "0004cfab-14fd-4e49-80ba-63a80b6bddd6,0.9512 264 152 213 379 0.5020 562 152 256 453\n"
          "00313ee0-9eaa-42f4-b0ab-c148ed3241cd,\n");
  }
  const Submission back = read_submission(file);
  REQUIRE(back.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(back[i].patient_id == original[i].patient_id);
    REQUIRE(back[i].boxes.size() == original[i].boxes.size());
    for (std::size_t j = 0; j < back[i].boxes.size(); ++j) {
      CHECK(back[i].boxes[j].score == original[i].boxes[j].score);
      CHECK(back[i].boxes[j].box == original[i].boxes[j].box);
    }
  }
  CHECK_THROWS_AS(read_submission(dir / "missing.csv"), chestlab::DataError);
}

TEST_CASE("RSNA submission: tolerated variations", "[rsna_map]") {
  const Submission s = parse_text(
      "\xEF\xBB\xBFpatientId,PredictionString\r\n"
      "a,\"0.5 1 2 3 4\"\r\n"
      "\r\n"
      "b,  0.25\t10 20 +30 4e1  \r\n"
      "c\t,\n");
  REQUIRE(s.size() == 3);
  CHECK(s[0].boxes.size() == 1);
  CHECK(s[0].boxes[0].box == Box{1, 2, 3, 4});
  CHECK(s[1].patient_id == "b");
  CHECK(s[1].boxes[0].score == 0.25);
  CHECK(s[1].boxes[0].box == Box{10, 20, 30, 40});
  CHECK(s[2].patient_id == "c");
  CHECK(s[2].boxes.empty());
}

TEST_CASE("RSNA submission: malformed lines name file and line", "[rsna_map]") {
  const std::string header = "patientId,PredictionString\n";
  using Catch::Matchers::Contains;
  CHECK_THAT(error_of("id,score\n"), Contains("sub.csv: line 1: expected the header"));
  CHECK_THAT(error_of(""), Contains("empty file"));
  // Blank lines still count: the bad line is line 4.
  const std::string groups = error_of(header + "a,0.5 1 2 3 4\n\nb,0.5 1 2 3 4 0.6 1 2\n");
  CHECK_THAT(groups, Contains("line 4"));
  CHECK_THAT(groups, Contains("8 values"));
  CHECK_THAT(groups, Contains("groups of 5"));
  const std::string nan = error_of(header + "a,0.5 1 abc 3 4\n");
  CHECK_THAT(nan, Contains("line 2"));
  CHECK_THAT(nan, Contains("'abc'"));
  CHECK_THAT(error_of(header + "a,0.5 1 2 3 inf\n"), Contains("not a finite number"));
  CHECK_THAT(error_of(header + "a,0.5 1 2 -3 4\n"), Contains("negative width or height"));
  CHECK_THAT(error_of(header + "a,0.5 1 2 3 4,0.6 1 2 3 4\n"), Contains("more than 2 fields"));
  CHECK_THAT(error_of(header + "just-an-id\n"), Contains("line 2: expected"));
  CHECK_THAT(error_of(header + ",0.5 1 2 3 4\n"), Contains("empty patientId"));
  CHECK_THAT(error_of(header + "a,\nb,\na,0.5 1 2 3 4\n"),
             Contains("line 4: patient a already appeared on line 2"));
}

// ---- chestlab score, end to end --------------------------------------------------------

TEST_CASE("chestlab score: scores a submission against a labels file", "[rsna_map]") {
  const std::string exe_env = chestlab::test::chestlab_exe();
  if (!std::filesystem::is_regular_file(exe_env)) {
    WARN("SKIPPED: the chestlab program is not built");
    return;
  }
  const auto dir = chestlab::test::scratch_dir("rsna_score_command");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return "'" + (dir / name).string() + "'";
  };
  const std::string labels = write("labels.csv",
                                   "patientId,x,y,width,height,Target\n"
                                   "p1,10,10,10,10,1\n"
                                   "p2,,,,,0\n"
                                   "p3,100,100,50,50,1\n"
                                   "p3,300,300,50,50,1\n");
  // p1: IoU 0.6 -> 5/8. p2: neither -> skipped. p3: no row -> 0. Score (0.625 + 0) / 2.
  const std::string submission =
      write("sub.csv", "patientId,PredictionString\np1,0.9 10 10 10 6\np2,\n");
  const std::string exe = chestlab::test::chestlab_exe();
  std::string out;

  REQUIRE(chestlab::test::run_command(exe + " score " + submission + " --labels " + labels +
                                          " --verbose",
                                      &out) == 0);
  using Catch::Matchers::Contains;
  CHECK_THAT(out, Contains("score: 0.312500"));
  CHECK_THAT(out, Contains("images counted: 2 (skipped 1"));
  CHECK_THAT(out, Contains("0.60  0.500000"));
  CHECK_THAT(out, Contains("0.65  0.000000"));

  const std::string unknown = write("unknown.csv", "patientId,PredictionString\nq9,\np1,\n");
  CHECK(chestlab::test::run_command(exe + " score " + unknown + " --labels " + labels, &out) == 3);
  CHECK_THAT(out, Contains("1 patient(s) are not in the labels file"));
  CHECK_THAT(out, Contains("q9"));

  const std::string malformed = write("bad.csv", "patientId,PredictionString\np1,0.9 1 2\n");
  CHECK(chestlab::test::run_command(exe + " score " + malformed + " --labels " + labels, &out) == 3);
  CHECK_THAT(out, Contains("line 2"));

  CHECK(chestlab::test::run_command(exe + " score " + submission, &out) == 2);
  CHECK_THAT(out, Contains("--labels"));
}

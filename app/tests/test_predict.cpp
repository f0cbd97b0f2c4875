// `chestlab predict` end to end: synth rsna (40 real label rows) -> train one epoch -> predict
// -> score, with the submission's format checked strictly, fold averaging, overlays, errors;
// and a box model's two folds concatenated, fused (WBF) and suppressed (NMS).
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "chestlab/detection/fusion.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab::test;

namespace {

struct Row {
  std::vector<std::array<double, 5>> boxes;  // confidence, x, y, w, h
};

// Reads a submission and checks its format strictly: the header, every patient of `ids`
// exactly once, groups of 5 numbers, confidences in [0, 1], boxes inside 1024 x 1024.
std::map<std::string, Row> read_checked(const fs::path& csv, const std::set<std::string>& ids) {
  std::ifstream in(csv);
  REQUIRE(in);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "patientId,PredictionString");
  std::map<std::string, Row> rows;
  while (std::getline(in, line)) {
    INFO(csv.string() << ": " << line);
    const auto comma = line.find(',');
    REQUIRE(comma != std::string::npos);
    const std::string id = line.substr(0, comma);
    CHECK(ids.count(id) == 1);
    REQUIRE(rows.count(id) == 0);
    std::istringstream values(line.substr(comma + 1));
    std::vector<double> numbers;
    std::string token;
    while (values >> token) {
      std::size_t used = 0;
      numbers.push_back(std::stod(token, &used));
      REQUIRE(used == token.size());
    }
    REQUIRE(numbers.size() % 5 == 0);
    Row& row = rows[id];
    for (std::size_t i = 0; i < numbers.size(); i += 5) {
      const double c = numbers[i], x = numbers[i + 1], y = numbers[i + 2], w = numbers[i + 3], h = numbers[i + 4];
      CHECK(c >= 0.0);
      CHECK(c <= 1.0);
      CHECK(x >= 0.0);
      CHECK(y >= 0.0);
      CHECK(w > 0.0);
      CHECK(h > 0.0);
      CHECK(x + w <= 1024.0);
      CHECK(y + h <= 1024.0);
      row.boxes.push_back({c, x, y, w, h});
    }
  }
  CHECK(rows.size() == ids.size());
  return rows;
}

std::size_t box_count(const std::map<std::string, Row>& rows) {
  std::size_t n = 0;
  for (const auto& [id, row] : rows) n += row.boxes.size();
  return n;
}

// The number after "score: " in a command's output.
double score_in(const std::string& output) {
  const auto at = output.find("score: ");
  REQUIRE(at != std::string::npos);
  return std::stod(output.substr(at + 7));
}

}  // namespace

TEST_CASE("synth -> train one epoch -> predict -> score round trip", "[predict][e2e]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path dir = scratch_dir("predict_e2e");
  const fs::path corpus = dir / "corpus";
  const std::string exe = shell_quote(chestlab_exe());
  std::string log;
  REQUIRE(run_command(exe + " synth rsna --labels " + shell_quote((data / "rsna" / "stage_2_train_labels.csv").string()) +
                          " --class-info " +
                          shell_quote((data / "rsna" / "stage_2_detailed_class_info.csv").string()) +
                          " --limit 40 --seed 1 --out " + shell_quote(corpus.string()),
                      &log) == 0);
  std::set<std::string> ids;
  for (const auto& e : fs::directory_iterator(corpus))
    if (e.path().extension() == ".dcm") ids.insert(e.path().stem().string());
  REQUIRE(ids.size() == 40);
  const std::string labels = shell_quote((corpus / "stage_2_train_labels.csv").string());

  // The small RSNA recipe, shrunk to seconds: 32 px, a narrow net, 2 folds of 1 epoch.
  const std::string experiment = (source_dir() / "experiments" / "rsna_resnet_seg_small.toml").string();
  const fs::path results = dir / "results";
  REQUIRE(run_command(exe + " run " + shell_quote(experiment) + " --set dataset.images=" +
                          shell_quote(corpus.string()) + " --set dataset.labels=" + labels +
                          " --set dataset.class_info=" +
                          shell_quote((corpus / "stage_2_detailed_class_info.csv").string()) +
                          " --set dataset.image_size=32 --set train.epochs=1 --set cv.folds=2"
                          " --set train.batch_size=8 --set model.channels=8 --set model.depth=2 --set model.blocks=1"
                          " --output " + shell_quote(results.string()) + " --quiet",
                      &log) == 0);
  fs::path run;
  for (const auto& e : fs::recursive_directory_iterator(results))
    if (e.path().extension() == ".h5") run = e.path();
  REQUIRE_FALSE(run.empty());
  const std::string predict = exe + " predict --run " + shell_quote(run.string()) + " --images " +
                              shell_quote(corpus.string()) + " ";

  // Threshold 0: every pixel is foreground, so each image gets one box, the whole image,
  // whose confidence is the mean probability of the map: fold averaging is visible in it.
  std::map<std::string, std::map<std::string, Row>> whole;
  for (const std::string fold : {"0", "1", "all"}) {
    const fs::path out = dir / ("whole_" + fold + ".csv");
    REQUIRE(run_command(predict + "--threshold 0 --quiet --fold " + fold + " --out " + shell_quote(out.string()),
                        &log) == 0);
    whole[fold] = read_checked(out, ids);
    for (const auto& [id, row] : whole[fold]) {
      REQUIRE(row.boxes.size() == 1);
      CHECK(row.boxes[0][1] == 0.0);
      CHECK(row.boxes[0][2] == 0.0);
      CHECK(row.boxes[0][3] == 1024.0);
      CHECK(row.boxes[0][4] == 1024.0);
    }
  }
  double largest_fold_gap = 0;
  for (const auto& id : ids) {
    INFO(id);
    const double c0 = whole["0"][id].boxes[0][0], c1 = whole["1"][id].boxes[0][0];
    CHECK(whole["all"][id].boxes[0][0] == Approx((c0 + c1) / 2).margin(1.5e-4));  // 4-decimal rounding
    largest_fold_gap = std::max(largest_fold_gap, std::abs(c0 - c1));
  }
  CHECK(largest_fold_gap > 1e-3);  // else the check above could not tell the folds apart

  // A threshold at the typical probability cuts the maps into several components.
  const double mid = whole["all"].begin()->second.boxes[0][0];
  const fs::path submission = dir / "submission.csv", overlays = dir / "overlays";
  REQUIRE(run_command(predict + fmt::format("--threshold {} --labels {} --overlays {} --out {}", mid, labels,
                                            shell_quote(overlays.string()), shell_quote(submission.string())),
                      &log) == 0);
  INFO(log);
  const auto rows = read_checked(submission, ids);
  CHECK(box_count(rows) > ids.size());  // more than one box per image on average
  const double score = score_in(log);
  CHECK(score >= 0.0);
  CHECK(score <= 1.0);
  std::string scored;
  REQUIRE(run_command(exe + " score " + shell_quote(submission.string()) + " --labels " + labels, &scored) == 0);
  CHECK(score_in(scored) == score);  // the same metric on the same boxes

  for (const auto& id : ids) {
    INFO(id);
    const fs::path png = overlays / (id + ".png");
    REQUIRE(fs::exists(png));
    std::ifstream in(png, std::ios::binary);
    char signature[8] = {};
    in.read(signature, 8);
    CHECK(std::string(signature, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    const cv::Mat image = cv::imread(png.string(), cv::IMREAD_UNCHANGED);
    REQUIRE_FALSE(image.empty());
    CHECK(image.rows == 512);
    CHECK(image.cols == 512);
    CHECK(image.channels() == 3);
  }

  {  // the run's own post-processing (threshold 0.5) also gives a valid submission
    const fs::path out = dir / "default.csv";
    REQUIRE(run_command(predict + "--fold 1 --quiet --out " + shell_quote(out.string()), &log) == 0);
    read_checked(out, ids);
  }
  {  // a fold that does not exist is a usage error naming the folds
    CHECK(run_command(predict + "--fold 5 --out " + shell_quote((dir / "x.csv").string()), &log) == 2);
    CHECK(log.find("fold 5 does not exist") != std::string::npos);
  }
  {  // a folder without DICOM files is a data error
    const fs::path empty = dir / "empty";
    fs::create_directories(empty);
    CHECK(run_command(exe + " predict --run " + shell_quote(run.string()) + " --images " +
                          shell_quote(empty.string()) + " --out " + shell_quote((dir / "x.csv").string()),
                      &log) == 3);
    CHECK(log.find("no <patientId>.dcm") != std::string::npos);
  }
  {  // images missing from --labels are a data error
    const fs::path few = dir / "few_labels.csv";
    std::ofstream(few) << "patientId,x,y,width,height,Target\n" << *ids.begin() << ",,,,,0\n";
    CHECK(run_command(predict + "--labels " + shell_quote(few.string()) + " --out " +
                          shell_quote((dir / "x.csv").string()),
                      &log) == 3);
    CHECK(log.find("39 image(s)") != std::string::npos);
  }
}

namespace {

std::vector<chestlab::ScoredBox> scored(const Row& row) {
  std::vector<chestlab::ScoredBox> out;
  for (const auto& b : row.boxes) out.push_back({b[0], {b[1], b[2], b[3], b[4]}});
  return out;
}

std::vector<std::array<double, 5>> sorted_rows(std::vector<std::array<double, 5>> boxes) {
  std::sort(boxes.begin(), boxes.end());
  return boxes;
}

}  // namespace

TEST_CASE("box model with two folds: predict concatenates, fuses (wbf) or suppresses (nms) their boxes",
          "[predict][e2e][fusion]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path dir = scratch_dir("predict_fusion_e2e");
  const fs::path corpus = dir / "corpus";
  const std::string exe = shell_quote(chestlab_exe());
  std::string log;
  REQUIRE(run_command(exe + " synth rsna --labels " + shell_quote((data / "rsna" / "stage_2_train_labels.csv").string()) +
                          " --class-info " +
                          shell_quote((data / "rsna" / "stage_2_detailed_class_info.csv").string()) +
                          " --limit 24 --seed 3 --out " + shell_quote(corpus.string()),
                      &log) == 0);
  std::set<std::string> ids;
  for (const auto& e : fs::directory_iterator(corpus))
    if (e.path().extension() == ".dcm") ids.insert(e.path().stem().string());
  REQUIRE(ids.size() == 24);

  // The small RetinaNet recipe shrunk to seconds (64 px, a narrow net, 2 folds of 1 epoch),
  // with every box kept (no score cut in the model or the metric): each fold gives exactly
  // max_detections boxes per image, and both folds' boxes of an image overlap.
  const std::string experiment = (source_dir() / "experiments" / "rsna_retinanet_small.toml").string();
  const fs::path results = dir / "results";
  REQUIRE(run_command(exe + " run " + shell_quote(experiment) + " --set dataset.images=" +
                          shell_quote(corpus.string()) + " --set dataset.labels=" +
                          shell_quote((corpus / "stage_2_train_labels.csv").string()) + " --set dataset.class_info=" +
                          shell_quote((corpus / "stage_2_detailed_class_info.csv").string()) +
                          " --set dataset.image_size=64 --set model.width=8 --set model.fpn_channels=16"
                          " --set model.head_convs=1 --set model.score_threshold=0 --set model.max_detections=4"
                          " --set metrics.0.min_score=0 --set train.epochs=1 --set cv.folds=2"
                          " --set 'cv.run_folds=[0,1]' --output " + shell_quote(results.string()) + " --quiet",
                      &log) == 0);
  fs::path run;
  for (const auto& e : fs::recursive_directory_iterator(results))
    if (e.path().extension() == ".h5") run = e.path();
  REQUIRE_FALSE(run.empty());
  const std::string predict = exe + " predict --run " + shell_quote(run.string()) + " --images " +
                              shell_quote(corpus.string()) + " ";
  auto predicted = [&](const std::string& options, const std::string& name, std::string* output = nullptr) {
    const fs::path out = dir / (name + ".csv");
    std::string text;
    REQUIRE(run_command(predict + options + " --out " + shell_quote(out.string()), &text) == 0);
    if (output) *output = text;
    return read_checked(out, ids);
  };

  const auto fold0 = predicted("--fold 0 --quiet", "fold0");
  const auto fold1 = predicted("--fold 1 --quiet", "fold1");
  const auto concat = predicted("--fuse concat --quiet", "concat");
  std::string wbf_output;
  const auto wbf = predicted("--fuse wbf", "wbf", &wbf_output);
  const auto nms = predicted("--fuse nms --quiet", "nms");
  CHECK(wbf_output.find("boxes of 2 folds fused: wbf (IoU 0.55)") != std::string::npos);
  // One fold: its boxes as they are, whatever --fuse.
  const bool single_fold_unchanged = sorted_rows(predicted("--fold 0 --fuse concat --quiet", "fold0_concat")
                                                     .at(*ids.begin())
                                                     .boxes) == sorted_rows(fold0.at(*ids.begin()).boxes);
  CHECK(single_fold_unchanged);

  std::size_t concat_boxes = 0, wbf_boxes = 0;
  for (const auto& id : ids) {
    INFO(id);
    REQUIRE(fold0.at(id).boxes.size() == 4);
    REQUIRE(fold1.at(id).boxes.size() == 4);
    auto both = fold0.at(id).boxes;
    both.insert(both.end(), fold1.at(id).boxes.begin(), fold1.at(id).boxes.end());
    const bool concat_is_both_folds = sorted_rows(concat.at(id).boxes) == sorted_rows(both);
    CHECK(concat_is_both_folds);

    // WBF of the folds' written boxes (4-decimal confidences, integer pixels) gives the written
    // fused boxes up to that rounding.
    const auto expected = chestlab::detection::weighted_boxes_fusion({scored(fold0.at(id)), scored(fold1.at(id))});
    const auto& got = wbf.at(id).boxes;
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i][0] == Approx(expected[i].score).margin(2e-4));
      CHECK(got[i][1] == Approx(expected[i].box.x).margin(1.0));
      CHECK(got[i][2] == Approx(expected[i].box.y).margin(1.0));
      CHECK(got[i][3] == Approx(expected[i].box.w).margin(1.0));
      CHECK(got[i][4] == Approx(expected[i].box.h).margin(1.0));
    }
    for (const auto& kept : nms.at(id).boxes) {
      const bool one_of_the_folds = std::find(both.begin(), both.end(), kept) != both.end();
      CHECK(one_of_the_folds);
    }
    CHECK(nms.at(id).boxes.size() <= both.size());
    concat_boxes += both.size();
    wbf_boxes += got.size();
  }
  CHECK(wbf_boxes < concat_boxes);  // the folds agreed somewhere, so fusion merged boxes

  CHECK(run_command(predict + "--fuse mean --out " + shell_quote((dir / "x.csv").string()), &log) == 2);
  CHECK(log.find("--fuse takes wbf, nms or concat") != std::string::npos);
  CHECK(run_command(predict + "--fuse-iou 0 --out " + shell_quote((dir / "x.csv").string()), &log) == 2);
  CHECK(log.find("--fuse-iou must be in (0, 1]") != std::string::npos);
}

// RSNA label statistics (chestlab explore's core): numbers checked against counts made here
// independently from the CSV text, figures written and readable.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>

#include "chestlab/rsna/explore.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RsnaPatient patient(const std::string& id, std::vector<Box> boxes, const std::string& age = "",
                    const std::string& sex = "", const std::string& view = "") {
  RsnaPatient p;
  p.patient_id = id;
  p.boxes = std::move(boxes);
  p.target = p.boxes.empty() ? 0 : 1;
  p.class_index = p.target ? kRsnaLungOpacity : kRsnaNormal;
  p.class_name = rsna_class_names()[p.class_index];
  if (!age.empty()) p.meta[rsna_meta::kAge] = age;
  if (!sex.empty()) p.meta[rsna_meta::kSex] = sex;
  if (!view.empty()) p.meta[rsna_meta::kViewPosition] = view;
  return p;
}

}  // namespace

TEST_CASE("explore_rsna counts a hand-made table", "[explore]") {
  // Two size groups: small (~100 x 100) and large (~300 x 600).
  std::vector<RsnaPatient> ps = {
      patient("a", {}, "30", "M", "PA"),
      patient("b", {{0, 0, 100, 100}, {500, 0, 110, 90}}, "50", "F", "AP"),
      patient("c", {{100, 100, 300, 600}}, "200", "M", "AP"),
      patient("d", {{0, 0, 95, 105}, {10, 10, 310, 590}, {20, 20, 290, 610}}, "", "F", "AP"),
  };
  RsnaExploreOptions o;
  o.kmeans_k = 2;
  const RsnaExploreStats s = explore_rsna(ps, o);
  CHECK(s.patients == 4);
  CHECK(s.positive == 3);
  CHECK(s.boxes == 6);
  CHECK(s.boxes_per_image == std::vector<std::size_t>{1, 1, 1, 1});
  CHECK(s.width.n == 6);
  CHECK(s.width.min == 95);
  CHECK(s.width.max == 310);
  CHECK(s.height.median == Approx((105 + 590) / 2.0));
  CHECK(s.age.n == 2);  // 200 is implausible, d has none
  CHECK(s.age.mean == 40);
  CHECK(s.age_implausible == 1);
  CHECK(s.age_missing == 1);
  REQUIRE(s.view.size() == 2);
  CHECK(s.view[0].key == "AP");
  CHECK(s.view[0].patients == 3);
  CHECK(s.view[0].positive == 3);
  REQUIRE(s.clusters.size() == 2);
  CHECK(s.clusters[0].boxes == 3);
  CHECK(s.clusters[0].width == Approx(305.0 / 3).epsilon(0.01));
  CHECK(s.clusters[1].height == Approx(600).epsilon(0.01));
  CHECK(s.cluster_of_box == std::vector<int>{0, 0, 1, 0, 1, 1});
  // Same seed, same clusters.
  CHECK(explore_rsna(ps, o).cluster_of_box == s.cluster_of_box);
  // k larger than the boxes: one cluster per box at most.
  o.kmeans_k = 50;
  CHECK(explore_rsna(ps, o).clusters.size() == 6);
  // No boxes, no metadata: still a report.
  const RsnaExploreStats empty = explore_rsna({patient("x", {})}, o);
  CHECK(empty.clusters.empty());
  CHECK(!empty.has_metadata);
  const std::string md = rsna_explore_markdown(empty, o, {});
  CHECK(md.find("| patients | 1 |") != std::string::npos);
  CHECK(md.find("No DICOM header table") != std::string::npos);
}

TEST_CASE("explore on the real RSNA labels matches counts made from the CSV", "[explore][rsna]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path rsna = data / "rsna";
  // Independent count: patients, positives and boxes straight from the CSV lines.
  std::ifstream in(rsna / "stage_2_train_labels.csv");
  std::string line;
  std::getline(in, line);
  std::set<std::string> ids, positive;
  std::size_t boxes = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::string id = line.substr(0, line.find(','));
    ids.insert(id);
    if (line.back() == '1' || line.substr(line.size() - 2) == "1\r") {
      positive.insert(id);
      ++boxes;
    }
  }
  REQUIRE(ids.size() > 20000);

  const RsnaLabels labels = read_rsna_labels((rsna / "stage_2_train_labels.csv").string(),
                                             (rsna / "stage_2_detailed_class_info.csv").string(),
                                             (rsna / "kaggle_stage_2_train_images_dicom_headers.csv.gz").string());
  RsnaExploreOptions o;
  o.kmeans_k = 3;
  const RsnaExploreStats s = explore_rsna(labels.patients, o);
  CHECK(s.patients == ids.size());
  CHECK(s.positive == positive.size());
  CHECK(s.boxes == boxes);
  CHECK(s.has_metadata);
  std::size_t sex_total = 0;
  for (const auto& r : s.sex) sex_total += r.patients;
  CHECK(sex_total == ids.size());
  CHECK(s.age.n + s.age_missing + s.age_implausible == ids.size());

  const fs::path out = test::scratch_dir("explore_real");
  const auto files = write_rsna_explore(labels.patients, s, out.string(), o);
  for (const char* f : {"boxes_per_image.png", "box_heatmap.png", "box_width.png", "box_height.png",
                        "box_size_kmeans.png", "class_balance.png", "age.png", "sex.png", "view_position.png",
                        "summary.md"}) {
    INFO(f);
    CHECK(std::find(files.begin(), files.end(), f) != files.end());
    CHECK(fs::file_size(out / f) > 1000);
  }
  CHECK(cv::imread((out / "box_heatmap.png").string()).cols == 700);
  const std::string md = read_text(out / "summary.md");
  CHECK(md.find(fmt::format("| patients | {} |", ids.size())) != std::string::npos);
  CHECK(md.find(fmt::format("| positive (Target 1) | {} |", positive.size())) != std::string::npos);
  CHECK(md.find(fmt::format("| positive fraction | {:.2f} % |", 100.0 * positive.size() / ids.size())) !=
        std::string::npos);
  CHECK(md.find(fmt::format("| boxes | {} |", boxes)) != std::string::npos);
  CHECK(md.find("![where boxes lie](box_heatmap.png)") != std::string::npos);
}

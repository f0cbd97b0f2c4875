// RSNA label tables: parsing of hand-written tables (boxes, negatives, duplicates, missing
// classes, DICOM headers with quoted fields), malformed rows with their line numbers, the
// writers, and the real stage 2 files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "chestlab/box.h"
#include "chestlab/errors.h"
#include "chestlab/rsna/labels.h"
#include "support.h"

namespace fs = std::filesystem;
using chestlab::Box;
using chestlab::DataError;
using chestlab::RsnaLabels;
using chestlab::RsnaPatient;

namespace {

std::string write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

const char* const kLabels =
    "patientId,x,y,width,height,Target\n"
    "neg-1,,,,,0\n"
    "pos-2,264.0,152.0,213.0,379.0,1\n"
    "pos-2,562.0,152.0,256.0,453.0,1\n"
    "neg-3,,,,,0\r\n"  // a Windows line ending is tolerated
    "pos-4,10.5,20.25,30.0,40.0,1\n"
    "pos-2,100.0,100.0,50.0,60.0,1\n";

// Duplicate rows per label row, as the real table; pos-4 and neg-3 are missing.
const char* const kClasses =
    "patientId,class\n"
    "neg-1,Normal\n"
    "pos-2,Lung Opacity\n"
    "pos-2,Lung Opacity\n"
    "pos-2,Lung Opacity\n";

// An unnamed index column first, a pixel spacing list quoted because of its comma, and an
// image that is not in the labels.
const char* const kHeaders =
    ",PatientAge,PatientID,PatientSex,PixelSpacing,ViewPosition,Modality\n"
    "0,43,neg-1,F,\"[0.168, 0.168]\",AP,CR\n"
    "1,58,pos-2,M,0.143,PA,CR\n"
    "2,71,other-patient,M,0.143,PA,CR\n"
    "3,35,pos-4,F,\"0.139\",AP,CR\n"
    "4,36,neg-3,M,0.2,AP,CR\n";

struct Tables {
  std::string labels, classes, headers;
};

Tables write_tables(const fs::path& dir) {
  return {write_text(dir / "labels.csv", kLabels), write_text(dir / "classes.csv", kClasses),
          write_text(dir / "headers.csv", kHeaders)};
}

// The DataError a parse throws, checked to name `file`, `line` and `fragment`.
void check_data_error(const std::function<void()>& parse, const std::string& file, int line,
                      const std::string& fragment) {
  try {
    parse();
    FAIL("no DataError thrown; expected line " << line << ": " << fragment);
  } catch (const DataError& e) {
    INFO(e.what());
    CHECK(e.file == file);
    CHECK_THAT(e.what(), Catch::Contains(file + ": line " + std::to_string(line) + ":"));
    CHECK_THAT(e.what(), Catch::Contains(fragment));
  }
}

}  // namespace

TEST_CASE("iou of boxes", "[rsna][box]") {
  const Box a{0, 0, 10, 10};
  CHECK(chestlab::iou(a, a) == 1.0);
  CHECK(chestlab::iou(a, Box{5, 0, 10, 10}) == Approx(50.0 / 150.0));
  CHECK(chestlab::iou(a, Box{2, 2, 5, 5}) == Approx(25.0 / 100.0));
  CHECK(chestlab::iou(a, Box{10, 0, 5, 5}) == 0.0);  // touching edges
  CHECK(chestlab::iou(a, Box{20, 20, 5, 5}) == 0.0);
  CHECK(chestlab::iou(Box{1, 1, 0, 0}, Box{1, 1, 0, 0}) == 0.0);
}

TEST_CASE("RSNA class names and indices", "[rsna]") {
  const auto& names = chestlab::rsna_class_names();
  REQUIRE(names.size() == 3);
  CHECK(names[chestlab::kRsnaNormal] == "Normal");
  CHECK(names[chestlab::kRsnaNoOpacityNotNormal] == "No Lung Opacity / Not Normal");
  CHECK(names[chestlab::kRsnaLungOpacity] == "Lung Opacity");
  CHECK(chestlab::rsna_class_index("Lung Opacity") == 2);
  CHECK(chestlab::rsna_class_index("lung opacity") == chestlab::kRsnaUnknownClass);
}

TEST_CASE("RSNA labels: boxes, negatives, classes and header metadata", "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_parse");
  const Tables t = write_tables(dir);
  const RsnaLabels labels = chestlab::read_rsna_labels(t.labels, t.classes, t.headers);

  REQUIRE(labels.patients.size() == 4);
  const std::vector<std::string> order = {"neg-1", "pos-2", "neg-3", "pos-4"};
  for (std::size_t i = 0; i < order.size(); ++i) CHECK(labels.patients[i].patient_id == order[i]);

  const RsnaPatient* neg = labels.find("neg-1");
  REQUIRE(neg != nullptr);
  CHECK(neg->target == 0);
  CHECK(neg->boxes.empty());
  CHECK(neg->class_name == "Normal");
  CHECK(neg->class_index == chestlab::kRsnaNormal);

  const RsnaPatient* pos = labels.find("pos-2");
  REQUIRE(pos != nullptr);
  CHECK(pos->target == 1);
  REQUIRE(pos->boxes.size() == 3);  // the third row comes after other patients
  CHECK(pos->boxes[0] == Box{264, 152, 213, 379});
  CHECK(pos->boxes[1] == Box{562, 152, 256, 453});
  CHECK(pos->boxes[2] == Box{100, 100, 50, 60});
  CHECK(pos->class_index == chestlab::kRsnaLungOpacity);
  CHECK(labels.find("pos-4")->boxes.at(0) == Box{10.5, 20.25, 30, 40});
  CHECK(labels.find("nobody") == nullptr);

  // Metadata: the quoted list keeps its comma; unnamed index and id columns are not kept.
  CHECK(neg->meta.at(chestlab::rsna_meta::kPixelSpacing) == "[0.168, 0.168]");
  CHECK(neg->meta.at(chestlab::rsna_meta::kAge) == "43");
  CHECK(neg->meta.at(chestlab::rsna_meta::kSex) == "F");
  CHECK(neg->meta.at(chestlab::rsna_meta::kViewPosition) == "AP");
  CHECK(neg->meta.at("Modality") == "CR");
  CHECK(neg->meta.count("PatientID") == 0);
  CHECK(neg->meta.count("") == 0);
  CHECK(labels.find("pos-4")->meta.at(chestlab::rsna_meta::kPixelSpacing) == "0.139");
}

TEST_CASE("RSNA labels: a patient missing from the class table is derived and warned once",
          "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_missing_class");
  const Tables t = write_tables(dir);
  const RsnaLabels labels = chestlab::read_rsna_labels(t.labels, t.classes, "");

  // pos-4 (Target 1) is certainly "Lung Opacity"; neg-3 (Target 0) gets the documented guess.
  CHECK(labels.find("pos-4")->class_name == "Lung Opacity");
  CHECK(labels.find("neg-3")->class_name == "No Lung Opacity / Not Normal");
  CHECK(labels.find("neg-3")->class_index == chestlab::kRsnaNoOpacityNotNormal);
  REQUIRE(labels.warnings.size() == 2);
  CHECK_THAT(labels.warnings[0], Catch::Contains("neg-3") && Catch::Contains(t.classes));
  CHECK_THAT(labels.warnings[1], Catch::Contains("pos-4") && Catch::Contains("Lung Opacity"));

  // A missing multi-box patient is still one warning.
  const std::string classes = write_text(dir / "classes_without_pos2.csv",
                                         "patientId,class\nneg-1,Normal\nneg-3,Normal\n"
                                         "pos-4,Lung Opacity\n");
  const RsnaLabels without = chestlab::read_rsna_labels(t.labels, classes, "");
  REQUIRE(without.warnings.size() == 1);
  CHECK_THAT(without.warnings[0], Catch::Contains("pos-2"));
  CHECK(without.find("pos-2")->class_index == chestlab::kRsnaLungOpacity);
}

TEST_CASE("RSNA labels: without a class table only Target 1 has a class", "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_no_class_table");
  const Tables t = write_tables(dir);
  const RsnaLabels labels = chestlab::read_rsna_labels(t.labels, "", "");
  CHECK(labels.warnings.empty());
  CHECK(labels.find("pos-2")->class_index == chestlab::kRsnaLungOpacity);
  CHECK(labels.find("neg-1")->class_index == chestlab::kRsnaUnknownClass);
  CHECK(labels.find("neg-1")->class_name.empty());
  CHECK(labels.find("neg-1")->meta.empty());
}

TEST_CASE("RSNA labels: header table read from gzip and missing header rows warned",
          "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_gzip");
  const Tables t = write_tables(dir);
  // Drop neg-3's row, then compress.
  std::string headers = kHeaders;
  headers.erase(headers.find("4,36,neg-3"));
  write_text(dir / "headers.csv", headers);
  REQUIRE(chestlab::test::run_command("gzip -f " + (dir / "headers.csv").string()) == 0);
  const std::string gz = (dir / "headers.csv.gz").string();

  const RsnaLabels labels = chestlab::read_rsna_labels(t.labels, t.classes, gz);
  CHECK(labels.find("pos-2")->meta.at(chestlab::rsna_meta::kAge) == "58");
  CHECK(labels.find("neg-3")->meta.empty());
  const auto mentions = [](const std::string& w) { return w.find("DICOM header") != std::string::npos; };
  REQUIRE(std::count_if(labels.warnings.begin(), labels.warnings.end(), mentions) == 1);
  CHECK_THAT(labels.warnings.back(), Catch::Contains("neg-3") && Catch::Contains(gz));

  // A truncated gzip stream is a DataError, not a silently short table.
  const std::string bytes = read_text(gz);
  const std::string cut = write_text(dir / "cut.csv.gz", bytes.substr(0, bytes.size() - 12));
  CHECK_THROWS_AS(chestlab::read_rsna_labels(t.labels, t.classes, cut), DataError);
}

TEST_CASE("RSNA labels: malformed rows name the file and line", "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_malformed");
  const Tables good = write_tables(dir);
  const std::string header = "patientId,x,y,width,height,Target\n";
  const std::string ok_rows = "a,,,,,0\nb,1.0,2.0,3.0,4.0,1\n";  // lines 2 and 3

  struct Case {
    std::string rows;
    int line;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {"c,1.0,2.0,3.0,1\n", 4, "expected 6 fields, found 5"},
      {"c,1.0,two,3.0,4.0,1\n", 4, "y is 'two', expected a number"},
      {"c,1.0,2.0,3.0,4.0x,1\n", 4, "height is '4.0x'"},
      {"c,,,,,2\n", 4, "Target is '2', expected 0 or 1"},
      {"c,1.0,2.0,3.0,4.0,0\n", 4, "a box on a Target 0 row"},
      {"c,,,,,1\n", 4, "Target is 1 but the box fields are empty"},
      {"c,1.0,,3.0,4.0,1\n", 4, "some box fields are empty"},
      {"c,1.0,2.0,-3.0,4.0,1\n", 4, "must be positive"},
      {"\nb,,,,,0\n", 5, "Target 0 here but Target 1 on an earlier row"},
      {",,,,,0\n", 4, "empty patientId"},
      {"\"c,1.0,2.0,3.0,4.0,1\n", 4, "unterminated quoted field"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.rows);
    const std::string path = write_text(dir / "bad_labels.csv", header + ok_rows + c.rows);
    check_data_error([&] { chestlab::read_rsna_labels(path, "", ""); }, path, c.line, c.fragment);
  }

  const std::string no_target = write_text(dir / "no_target.csv", "patientId,x,y,width,height\n");
  check_data_error([&] { chestlab::read_rsna_labels(no_target, "", ""); }, no_target, 1,
                   "missing column 'Target'");

  // Class table: unknown name, conflicting duplicates, class contradicting Target.
  const std::vector<Case> class_cases = {
      {"neg-1,Pneumonia\n", 2, "unknown class 'Pneumonia'"},
      {"pos-2,Lung Opacity\npos-2,Normal\n", 3, "'Normal' here but 'Lung Opacity' on line 2"},
      {"neg-1,Lung Opacity\n", 2, "class 'Lung Opacity' but Target 0"},
      {"pos-2,Normal\n", 2, "class 'Normal' but Target 1"},
      {"neg-1\n", 2, "expected 2 fields, found 1"},
  };
  for (const Case& c : class_cases) {
    CAPTURE(c.rows);
    const std::string path = write_text(dir / "bad_classes.csv", "patientId,class\n" + c.rows);
    check_data_error([&] { chestlab::read_rsna_labels(good.labels, path, ""); }, path, c.line,
                     c.fragment);
  }

  // Header table: a required column missing, a short row.
  const std::string no_spacing =
      write_text(dir / "no_spacing.csv", ",PatientAge,PatientID,PatientSex,ViewPosition\n");
  check_data_error([&] { chestlab::read_rsna_labels(good.labels, "", no_spacing); }, no_spacing,
                   1, "missing column 'PixelSpacing'");
  const std::string short_row = write_text(
      dir / "short_row.csv", std::string(kHeaders) + "5,40,pos-2,M,0.1\n");
  check_data_error([&] { chestlab::read_rsna_labels(good.labels, "", short_row); }, short_row, 7,
                   "expected 7 fields, found 5");

  CHECK_THROWS_AS(chestlab::read_rsna_labels((dir / "absent.csv").string(), "", ""), DataError);
}

TEST_CASE("RSNA labels: write then read gives the same patients", "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_roundtrip");
  const Tables t = write_tables(dir);
  const RsnaLabels original = chestlab::read_rsna_labels(t.labels, t.classes, "");

  std::vector<RsnaPatient> patients = original.patients;
  patients[3].boxes.push_back(Box{0.1, 1e-3, 1.0 / 3.0, 1000.0});  // shortest round-trip text
  patients.push_back(RsnaPatient{"needs,quotes", 0, {}, "Normal", chestlab::kRsnaNormal, {}});
  const std::string labels_out = (dir / "out_labels.csv").string();
  const std::string classes_out = (dir / "out_classes.csv").string();
  chestlab::write_rsna_labels(labels_out, patients);
  chestlab::write_rsna_class_info(classes_out, patients);

  const RsnaLabels back = chestlab::read_rsna_labels(labels_out, classes_out, "");
  CHECK(back.warnings.empty());
  REQUIRE(back.patients.size() == patients.size());
  for (std::size_t i = 0; i < patients.size(); ++i) {
    CAPTURE(i);
    CHECK(back.patients[i].patient_id == patients[i].patient_id);
    CHECK(back.patients[i].target == patients[i].target);
    CHECK(back.patients[i].boxes == patients[i].boxes);
    CHECK(back.patients[i].class_index == patients[i].class_index);
  }
  // Same text as the original format: integers written as 264.0, one class row per label row.
  const std::string text = read_text(labels_out);
  CHECK_THAT(text, Catch::StartsWith("patientId,x,y,width,height,Target\nneg-1,,,,,0\n"
                                     "pos-2,264.0,152.0,213.0,379.0,1\n"));
  CHECK_THAT(read_text(classes_out),
             Catch::StartsWith("patientId,class\nneg-1,Normal\npos-2,Lung Opacity\n"
                               "pos-2,Lung Opacity\npos-2,Lung Opacity\n"));

  RsnaPatient inconsistent{"x", 1, {}, "Lung Opacity", chestlab::kRsnaLungOpacity, {}};
  CHECK_THROWS_AS(chestlab::write_rsna_labels(labels_out, {inconsistent}), std::invalid_argument);
  RsnaPatient classless{"y", 0, {}, "", chestlab::kRsnaUnknownClass, {}};
  CHECK_THROWS_AS(chestlab::write_rsna_class_info(classes_out, {classless}),
                  std::invalid_argument);
  CHECK_THROWS_AS(chestlab::write_rsna_labels((dir / "no" / "such" / "dir.csv").string(), patients),
                  DataError);
}

TEST_CASE("RSNA labels: find() after the patient list changes", "[rsna]") {
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_find");
  const Tables t = write_tables(dir);
  RsnaLabels labels = chestlab::read_rsna_labels(t.labels, t.classes, "");
  labels.patients.push_back(RsnaPatient{"added", 0, {}, "", -1, {}});
  REQUIRE(labels.find("added") != nullptr);
  CHECK(labels.find("added") == &labels.patients.back());
  labels.patients.erase(labels.patients.begin());
  CHECK(labels.find("neg-1") == nullptr);
  CHECK(labels.find("pos-2") == &labels.patients[0]);
  labels.reindex();
  CHECK(labels.find("pos-2") == &labels.patients[0]);
  CHECK(labels.find("neg-1") == nullptr);
}

TEST_CASE("RSNA labels: the real stage 2 tables", "[rsna][shared-data]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path rsna = data / "rsna";
  const auto start = std::chrono::steady_clock::now();
  const RsnaLabels labels = chestlab::read_rsna_labels(
      (rsna / "stage_2_train_labels.csv").string(),
      (rsna / "stage_2_detailed_class_info.csv").string(),
      (rsna / "kaggle_stage_2_train_images_dicom_headers.csv.gz").string());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("read_rsna_labels on the real tables took " << seconds << " s");
  CHECK(seconds < 5.0);

  REQUIRE(labels.patients.size() == 26684);
  std::size_t boxes = 0, positives = 0;
  std::array<std::size_t, 3> per_class{};
  for (const RsnaPatient& p : labels.patients) {
    boxes += p.boxes.size();
    positives += p.target;
    REQUIRE(p.class_index >= 0);
    ++per_class[p.class_index];
  }
  CHECK(boxes == 9555);
  CHECK(positives == 6012);
  // Distinct (patient, class) rows of the class table, plus the derived patient.
  CHECK(per_class[chestlab::kRsnaNormal] == 8851);
  CHECK(per_class[chestlab::kRsnaNoOpacityNotNormal] == 11821);
  CHECK(per_class[chestlab::kRsnaLungOpacity] == 6011 + 1);

  const std::string missing = "489a175a-4c5c-4b7f-8fdc-cd8514404dbe";
  REQUIRE(labels.warnings.size() == 1);
  CHECK_THAT(labels.warnings[0], Catch::Contains(missing));
  const RsnaPatient* p = labels.find(missing);
  REQUIRE(p != nullptr);
  CHECK(p->class_name == "Lung Opacity");
  CHECK(p->boxes.at(0) == Box{636, 522, 158, 116});
  CHECK(p->meta.at(chestlab::rsna_meta::kAge) == "55");
  CHECK(p->meta.at(chestlab::rsna_meta::kSex) == "F");
  CHECK(p->meta.at(chestlab::rsna_meta::kViewPosition) == "PA");
  CHECK(p->meta.at(chestlab::rsna_meta::kPixelSpacing) == "0.19431099999999998");

  // The writer reproduces the labels file byte for byte.
  const fs::path dir = chestlab::test::scratch_dir("rsna_labels_real_rewrite");
  chestlab::write_rsna_labels((dir / "labels.csv").string(), labels.patients);
  CHECK(read_text(dir / "labels.csv") == read_text(rsna / "stage_2_train_labels.csv"));
}

// The rsna_pneumonia dataset plugin on a synthetic corpus in the RSNA format (shapes, box
// masks, labels, meta, errors, cache), on the real label tables (construction time, classes),
// the rsna_map metric plugin, and synth -> cache -> run end to end through the program.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "chestlab/errors.h"
#include "chestlab/host/registry.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/rsna/synth_corpus.h"
#include "chestlab/engine/runfile.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

PluginRegistry& registry() {
  static PluginRegistry* r = [] {
    auto* made = new PluginRegistry;
    made->discover();
    return made;
  }();
  return *r;
}

// Patient i: i % 4 == 0 two boxes, 1 one box, 2 Normal, 3 No Lung Opacity / Not Normal.
// Box corners are not multiples of 16, so the 1024 -> 64 masks have partly covered pixels.
struct Tables {
  std::string labels, classes, headers;
};

Tables make_tables(int patients) {
  Tables t;
  t.labels = "patientId,x,y,width,height,Target\n";
  t.classes = "patientId,class\n";
  t.headers = ",PatientAge,PatientID,PatientSex,PixelSpacing,ViewPosition\n";
  for (int i = 0; i < patients; ++i) {
    const std::string id = fmt::format("rsna-{:02}", i);
    const int kind = i % 4;
    const int x = 250 + 7 * i, y = 300 + 5 * i;
    if (kind == 0) {
      t.labels += fmt::format("{},{}.0,{}.0,{}.0,{}.0,1\n", id, x, y, 171, 233);
      t.labels += fmt::format("{},{}.0,{}.0,{}.0,{}.0,1\n", id, x + 330, y + 20, 149, 251);
      t.classes += id + ",Lung Opacity\n" + id + ",Lung Opacity\n";
    } else if (kind == 1) {
      t.labels += fmt::format("{},{}.0,{}.0,{}.0,{}.0,1\n", id, x + 300, y - 40, 203, 287);
      t.classes += id + ",Lung Opacity\n";
    } else {
      t.labels += id + ",,,,,0\n";
      t.classes += id + (kind == 2 ? ",Normal\n" : ",No Lung Opacity / Not Normal\n");
    }
    t.headers += fmt::format("{},{},{},{},0.168,{}\n", i, 20 + i, id, i % 2 ? "F" : "M", i % 3 ? "PA" : "AP");
  }
  return t;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A 16-patient corpus, written once per process through the core API.
const fs::path& corpus_dir() {
  static const fs::path dir = [] {
    const fs::path d = scratch_dir("rsna_dataset_corpus");
    const Tables t = make_tables(16);
    write_text(d / "in_labels.csv", t.labels);
    write_text(d / "in_classes.csv", t.classes);
    write_text(d / "headers.csv", t.headers);
    rsna::SynthCorpusOptions o;
    o.labels_csv = (d / "in_labels.csv").string();
    o.class_info_csv = (d / "in_classes.csv").string();
    o.headers_csv = (d / "headers.csv").string();
    o.out_dir = d.string();
    o.seed = 5;
    rsna::write_synth_corpus(o);
    return d;
  }();
  return dir;
}

std::shared_ptr<Dataset> open_dataset(std::map<std::string, ParamValue> given, const std::string& base_dir) {
  const Params p = registry().params_for(Kind::Dataset, "rsna_pneumonia", given);
  return registry().make_dataset("rsna_pneumonia", p, DatasetContext{base_dir, 0});
}

// Relative paths, resolved against the base directory.
std::shared_ptr<Dataset> corpus_dataset(std::int64_t size = 64, std::map<std::string, ParamValue> extra = {}) {
  std::map<std::string, ParamValue> given = {{"labels", std::string("stage_2_train_labels.csv")},
                                             {"class_info", std::string("stage_2_detailed_class_info.csv")},
                                             {"headers", std::string("headers.csv")},
                                             {"images", std::string(".")},
                                             {"image_size", size}};
  for (auto& [k, v] : extra) given[k] = v;
  return open_dataset(given, corpus_dir().string());
}

std::vector<Box> boxes_of(const torch::Tensor& t) {
  std::vector<Box> out;
  for (std::int64_t i = 0; i < t.size(0); ++i)
    out.push_back({t[i][0].item<double>(), t[i][1].item<double>(), t[i][2].item<double>(), t[i][3].item<double>()});
  return out;
}

}  // namespace

TEST_CASE("rsna_pneumonia: one sample per patient with image, box mask, boxes, class, meta", "[rsna_dataset]") {
  auto dataset = corpus_dataset(64);
  const RsnaLabels truth = read_rsna_labels((corpus_dir() / "in_labels.csv").string(),
                                            (corpus_dir() / "in_classes.csv").string(),
                                            (corpus_dir() / "headers.csv").string());
  REQUIRE(dataset->size() == 16);
  CHECK(dataset->class_names() == rsna_class_names());
  for (std::size_t i = 0; i < dataset->size(); ++i) {
    const RsnaPatient& p = truth.patients[i];
    INFO("patient " << p.patient_id);
    const SampleInfo info = dataset->info(i);
    CHECK(info.id == p.patient_id);
    CHECK(info.group == p.patient_id);
    CHECK(info.label == p.class_index);

    const Sample s = dataset->get(i);
    CHECK(s.id == p.patient_id);
    CHECK(s.label == p.class_index);
    CHECK(s.original_height == 1024);
    CHECK(s.original_width == 1024);
    REQUIRE(s.image.sizes() == torch::IntArrayRef({1, 64, 64}));
    CHECK(s.image.dtype() == torch::kFloat32);
    CHECK(s.image.min().item<float>() >= 0.0f);
    CHECK(s.image.max().item<float>() <= 1.0f);
    CHECK(s.image.max().item<float>() > 0.5f);
    REQUIRE(s.mask.sizes() == torch::IntArrayRef({1, 64, 64}));
    CHECK(s.mask.eq(0).logical_or(s.mask.eq(1)).all().item<bool>());
    CHECK(s.meta.at("PatientAge") == p.meta.at("PatientAge"));
    CHECK(s.meta.at("PatientSex") == p.meta.at("PatientSex"));
    CHECK(s.meta.at("ViewPosition") == p.meta.at("ViewPosition"));
    CHECK(s.meta.at("PixelSpacing") == "0.168");

    // Boxes scale with the image (1024 -> 64: / 16).
    REQUIRE(s.boxes.dim() == 2);
    REQUIRE(s.boxes.size(0) == static_cast<std::int64_t>(p.boxes.size()));
    CHECK(s.boxes.size(1) == 4);
    const std::vector<Box> boxes = boxes_of(s.boxes);
    for (std::size_t b = 0; b < boxes.size(); ++b) {
      CHECK(boxes[b].x == Approx(p.boxes[b].x / 16));
      CHECK(boxes[b].w == Approx(p.boxes[b].w / 16));
      CHECK(boxes[b].y == Approx(p.boxes[b].y / 16));
      CHECK(boxes[b].h == Approx(p.boxes[b].h / 16));
    }
    // Mask and boxes agree: a foreground pixel's centre lies in a box (closed), and a pixel
    // whose centre lies half a pixel inside a box is foreground.
    const torch::Tensor mask2d = s.mask[0].contiguous();
    auto m = mask2d.accessor<float, 2>();
    int wrong_fg = 0, missing_fg = 0;
    for (int r = 0; r < 64; ++r) {
      for (int c = 0; c < 64; ++c) {
        const double cx = c + 0.5, cy = r + 0.5;
        bool in_box = false, deep_in_box = false;
        for (const Box& b : boxes) {
          in_box |= cx >= b.x && cx <= b.right() && cy >= b.y && cy <= b.bottom();
          deep_in_box |= cx >= b.x + 0.5 && cx <= b.right() - 0.5 && cy >= b.y + 0.5 && cy <= b.bottom() - 0.5;
        }
        if (m[r][c] > 0.5f && !in_box) ++wrong_fg;
        if (m[r][c] < 0.5f && deep_in_box) ++missing_fg;
      }
    }
    CHECK(wrong_fg == 0);
    CHECK(missing_fg == 0);
    if (boxes.empty()) CHECK(s.mask.sum().item<float>() == 0.0f);
  }
}

TEST_CASE("rsna_pneumonia: options", "[rsna_dataset]") {
  SECTION("without a class table the label is Target") {
    auto d = open_dataset({{"labels", (corpus_dir() / "stage_2_train_labels.csv").string()},
                           {"images", corpus_dir().string()},
                           {"image_size", std::int64_t{32}}},
                          "/nonexistent");
    CHECK(d->class_names().size() == 2);
    for (std::size_t i = 0; i < d->size(); ++i) CHECK(d->info(i).label == (i % 4 < 2 ? 1 : 0));
    CHECK(d->get(0).meta.empty());  // no headers table
  }
  SECTION("limit takes the first patients") {
    auto d = corpus_dataset(32, {{"limit", std::int64_t{5}}});
    CHECK(d->size() == 5);
    CHECK(d->info(4).id == "rsna-04");
  }
  SECTION("a window gives other pixels than min-max") {
    auto plain = corpus_dataset(32)->get(2).image;
    auto windowed = corpus_dataset(32, {{"window", std::vector<double>{60.0, 80.0}}})->get(2).image;
    CHECK_FALSE(torch::equal(plain, windowed));
    CHECK(windowed.min().item<float>() >= 0.0f);
    CHECK(windowed.max().item<float>() <= 1.0f);
    // The window maps [20, 100] to [0, 1]: the lungs (darker than the body) come out darker
    // than with min-max over the whole 0..255 range would make them, the body brighter.
    CHECK((windowed - plain).abs().max().item<float>() > 0.1f);
  }
  SECTION("image_size 256 keeps masks and boxes consistent") {
    const Sample s = corpus_dataset(256)->get(0);
    CHECK(s.image.size(2) == 256);
    CHECK(s.boxes[0][0].item<float>() == Approx(62.5));
    // Exactly the box pixels at this scale: 171 x 233 at (250, 300) is (62.5, 75) to
    // (105.25, 133.25) in 256-px pixels: column 62 is half covered (in), column 105 a quarter
    // (out); rows 75..132.
    CHECK(s.mask[0][100][62].item<float>() == 1.0f);
    CHECK(s.mask[0][100][61].item<float>() == 0.0f);
    CHECK(s.mask[0][100][104].item<float>() == 1.0f);
    CHECK(s.mask[0][100][105].item<float>() == 0.0f);
    CHECK(s.mask[0][75][80].item<float>() == 1.0f);
    CHECK(s.mask[0][74][80].item<float>() == 0.0f);
    CHECK(s.mask[0][132][80].item<float>() == 1.0f);
    CHECK(s.mask[0][133][80].item<float>() == 0.0f);
  }
  SECTION("a bad window is a configuration error") {
    CHECK_THROWS_AS(corpus_dataset(32, {{"window", std::vector<double>{60.0}}}), ConfigError);
    CHECK_THROWS_AS(corpus_dataset(32, {{"window", std::vector<double>{60.0, 0.0}}}), ConfigError);
  }
  SECTION("a missing labels table is a data error naming it") {
    try {
      open_dataset({{"labels", std::string("nope.csv")}, {"images", std::string(".")}}, corpus_dir().string());
      FAIL("no error");
    } catch (const DataError& e) {
      CHECK(e.file == (corpus_dir() / "nope.csv").string());
    }
  }
}

TEST_CASE("rsna_pneumonia: a missing or corrupt DICOM is a DataError naming the file", "[rsna_dataset]") {
  const fs::path dir = scratch_dir("rsna_dataset_missing");
  write_text(dir / "labels.csv", "patientId,x,y,width,height,Target\nghost,,,,,0\nbroken,,,,,0\n");
  write_text(dir / "broken.dcm", std::string(1000, 'z'));
  auto d = open_dataset({{"labels", std::string("labels.csv")}, {"images", std::string(".")}}, dir.string());
  REQUIRE(d->size() == 2);
  CHECK(d->info(0).id == "ghost");  // info() does not touch the file
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string expected = (dir / (d->info(i).id + ".dcm")).string();
    try {
      d->get(i);
      FAIL("no error for " << expected);
    } catch (const DataError& e) {
      CHECK(e.file == expected);
      CHECK(std::string(e.what()).find(expected) != std::string::npos);
    }
  }
}

TEST_CASE("rsna_pneumonia: the cache gives the same samples", "[rsna_dataset]") {
  const fs::path cache = corpus_dir() / "cache_64.h5";
  fs::remove(cache);
  std::vector<Sample> first;
  {
    auto d = corpus_dataset(64, {{"cache", std::string("cache_64.h5")}});
    for (std::size_t i = 0; i < d->size(); ++i) first.push_back(d->get(i));
  }
  REQUIRE(fs::exists(cache));
  auto plain = corpus_dataset(64);
  auto cached = corpus_dataset(64, {{"cache", cache.string()}});
  for (std::size_t i = 0; i < plain->size(); ++i) {
    const Sample a = plain->get(i), b = cached->get(i);
    INFO("sample " << i);
    CHECK(torch::equal(a.image, b.image));
    CHECK(torch::equal(a.image, first[i].image));
    CHECK(torch::equal(a.mask, b.mask));
    CHECK(torch::equal(a.boxes, b.boxes));
    CHECK(b.original_height == 1024);
  }
}

TEST_CASE("rsna_pneumonia on the real stage 2 tables: quick construction, 3 classes", "[rsna_dataset]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path rsna = data / "rsna";
  const auto start = std::chrono::steady_clock::now();
  auto d = open_dataset({{"labels", (rsna / "stage_2_train_labels.csv").string()},
                         {"class_info", (rsna / "stage_2_detailed_class_info.csv").string()},
                         {"headers", (rsna / "kaggle_stage_2_train_images_dicom_headers.csv.gz").string()},
                         {"images", std::string("/nonexistent/stage_2_train_images")}},
                        "");
  std::map<std::int64_t, std::size_t> per_class;
  for (std::size_t i = 0; i < d->size(); ++i) ++per_class[d->info(i).label];
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 3.0);
  CHECK(d->size() == 26684);
  CHECK(d->class_names().size() == 3);
  REQUIRE(per_class.size() == 3);
  // 8,851 Normal and 11,821 "Not Normal"; 6,012 opacity patients, one of whom is missing from
  // the class table and gets its class from Target.
  CHECK(per_class[kRsnaNormal] == 8851);
  CHECK(per_class[kRsnaNoOpacityNotNormal] == 11821);
  CHECK(per_class[kRsnaLungOpacity] == 6012);
}

TEST_CASE("rsna_map scores masks through connected components, and boxes as given", "[rsna_dataset]") {
  auto metric = registry().make_metric("rsna_map", registry().params_for(Kind::Metric, "rsna_map"));
  CHECK(to_string(registry().find(Kind::Metric, "rsna_map")->accepts) == "mask or boxes");
  Batch batch;
  batch.images = torch::zeros({3, 1, 32, 32});
  batch.boxes = {torch::tensor({{4.0f, 4.0f, 8.0f, 8.0f}}), torch::zeros({0, 4}), torch::zeros({0, 4})};

  SECTION("a mask model") {
    Prediction p;
    p.mask_prob = torch::zeros({3, 1, 32, 32});
    p.mask_prob.index_put_({0, 0, torch::indexing::Slice(4, 12), torch::indexing::Slice(4, 12)}, 0.9);
    metric->update(p, batch);  // image 0 perfect, 1 and 2 skipped (no truth, no boxes)
    CHECK(metric->compute() == Approx(1.0));
    p.mask_prob.index_put_({1, 0, 20, 20}, 0.9);  // a false positive on image 1
    metric->reset();
    metric->update(p, batch);
    CHECK(metric->compute() == Approx(0.5));
  }
  SECTION("a box model; half-overlapping boxes pass the lower thresholds only") {
    Prediction p;
    p.boxes = {torch::tensor({{0.8f, 9.0f, 4.0f, 8.0f, 8.0f}}), torch::zeros({0, 5}), torch::zeros({0, 5})};
    metric->update(p, batch);
    // IoU = 24 / 104 = 0.23: below every threshold -> 1 FP + 1 FN -> 0.
    CHECK(metric->compute() == Approx(0.0));
    metric->reset();
    p.boxes[0] = torch::tensor({{0.8f, 5.0f, 4.0f, 8.0f, 8.0f}});  // IoU 56/72 = 0.78
    metric->update(p, batch);
    CHECK(metric->compute() == Approx(1.0));
  }
  SECTION("no truth boxes in the batch is a configuration error") {
    Batch no_boxes = batch;
    no_boxes.boxes.clear();
    Prediction p;
    p.mask_prob = torch::zeros({3, 1, 32, 32});
    CHECK_THROWS_AS(metric->update(p, no_boxes), ConfigError);
  }
  SECTION("a gate without image_prob is refused only when it would matter") {
    auto gated = registry().make_metric("rsna_map", registry().params_for(Kind::Metric, "rsna_map",
                                                                          {{"gate", 0.5}}));
    Prediction p;
    p.mask_prob = torch::zeros({3, 1, 32, 32});
    gated->update(p, batch);  // nothing above threshold: the gate does not matter
    p.mask_prob.index_put_({0, 0, 5, 5}, 0.9);
    CHECK_THROWS_AS(gated->update(p, batch), ConfigError);
    p.image_prob = torch::tensor({0.2f, 0.9f, 0.9f});
    gated->reset();
    gated->update(p, batch);  // image 0 gated off: an FN
    CHECK(gated->compute() == Approx(0.0));
  }
}

TEST_CASE("synth rsna -> cache -> run on 40 patients at 64 px", "[rsna_dataset][e2e]") {
  const fs::path dir = scratch_dir("rsna_e2e");
  const Tables t = make_tables(40);
  write_text(dir / "labels.csv", t.labels);
  write_text(dir / "classes.csv", t.classes);
  const fs::path corpus = dir / "corpus";
  const std::string exe = shell_quote(chestlab_exe());
  std::string log;
  REQUIRE(run_command(exe + " synth rsna --labels " + shell_quote((dir / "labels.csv").string()) +
                          " --class-info " + shell_quote((dir / "classes.csv").string()) + " --out " +
                          shell_quote(corpus.string()) + " --seed 3",
                      &log) == 0);
  INFO(log);
  CHECK(log.find("wrote 40 images") != std::string::npos);

  const std::string experiment = (source_dir() / "experiments" / "rsna_resnet_seg_small.toml").string();
  const std::string sets = " --set dataset.images=" + shell_quote(corpus.string()) +
                           " --set dataset.labels=" + shell_quote((corpus / "stage_2_train_labels.csv").string()) +
                           " --set dataset.class_info=" +
                           shell_quote((corpus / "stage_2_detailed_class_info.csv").string()) +
                           " --set dataset.cache=" + shell_quote((dir / "cache.h5").string()) +
                           " --set train.epochs=1 --set cv.folds=2 --set train.batch_size=8"
                           // A small net: this checks the pipeline, not the recipe (seconds, not a minute).
                           " --set model.channels=8 --set model.depth=2 --set model.blocks=1";
  REQUIRE(run_command(exe + " cache " + shell_quote(experiment) + sets, &log) == 0);
  CHECK(log.find("40 samples read, 0 skipped") != std::string::npos);
  REQUIRE(fs::exists(dir / "cache.h5"));

  const fs::path results = dir / "results";
  REQUIRE(run_command(exe + " run " + shell_quote(experiment) + sets + " --output " + shell_quote(results.string()) +
                          " --quiet",
                      &log) == 0);
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(results))
    if (e.path().extension() == ".h5") files.push_back(e.path());
  REQUIRE(files.size() == 1);
  const RunInfo run = read_run(files.front().string());
  CHECK(run.status == RunStatus::Complete);
  CHECK(run.meta.monitor == "rsna_map");
  REQUIRE(run.folds.size() == 2);
  std::size_t validated = 0;
  for (const auto& fold : run.folds) {
    CHECK(fold.status == FoldStatus::Complete);
    CHECK(fold.metric_names == std::vector<std::string>{"rsna_map", "mean_iou"});
    REQUIRE(fold.history.size() == 1);
    const double map = fold.history[0].metrics[0];
    CHECK(map >= 0.0);
    CHECK(map <= 1.0);
    validated += fold.val_ids.size();
  }
  CHECK(validated == 40);
}

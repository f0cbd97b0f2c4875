// The synthetic RSNA corpus (files, tags, label tables, determinism, opacities inside their
// boxes) and the preprocessing cache (hits, invalidation, damaged files, concurrency).
#include <catch2/catch.hpp>

#include <opencv2/imgproc.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "chestlab/errors.h"
#include "chestlab/imaging/dicom.h"
#include "chestlab/imaging/image_ops.h"
#include "chestlab/rsna/cache.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/rsna/synth_corpus.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

// 12 patients: a three-box and a two-box patient, boxes at the image edge, both negative
// classes, and a patient the headers table does not know.
const char* const kLabels =
    "patientId,x,y,width,height,Target\n"
    "p01,264.0,152.0,213.0,379.0,1\n"
    "p01,562.0,152.0,256.0,453.0,1\n"
    "p02,,,,,0\n"
    "p03,,,,,0\n"
    "p04,300.0,400.0,180.0,220.0,1\n"
    "p05,,,,,0\n"
    "p06,600.0,500.0,200.0,250.0,1\n"
    "p06,250.0,520.0,190.0,240.0,1\n"
    "p06,620.0,250.0,150.0,160.0,1\n"
    "p07,,,,,0\n"
    "p08,0.0,700.0,160.0,200.0,1\n"
    "p09,,,,,0\n"
    "p10,660.0,380.0,240.0,300.0,1\n"
    "p11,,,,,0\n"
    "p12,,,,,0\n";

const char* const kClasses =
    "patientId,class\n"
    "p01,Lung Opacity\n"
    "p01,Lung Opacity\n"
    "p02,Normal\n"
    "p03,No Lung Opacity / Not Normal\n"
    "p04,Lung Opacity\n"
    "p05,Normal\n"
    "p06,Lung Opacity\n"
    "p06,Lung Opacity\n"
    "p06,Lung Opacity\n"
    "p07,No Lung Opacity / Not Normal\n"
    "p08,Lung Opacity\n"
    "p09,Normal\n"
    "p10,Lung Opacity\n"
    "p11,No Lung Opacity / Not Normal\n"
    "p12,Normal\n";

// Shaped like kaggle_stage_2_train_images_dicom_headers.csv(.gz); p12 is missing.
const char* const kHeaders =
    ",BodyPartExamined,ConversionType,Filename,InstanceNumber,Modality,PatientAge,PatientID,"
    "PatientOrientation,PatientSex,PixelSpacing,SamplesPerPixel,SeriesNumber,ViewPosition\n"
    "0,CHEST,WSD,p01.dcm,1.0,CR,43,p01,,F,0.168,1.0,1.0,AP\n"
    "1,CHEST,WSD,p02.dcm,1.0,CR,48,p02,,M,0.14300000000000002,1.0,1.0,PA\n"
    "2,CHEST,WSD,p03.dcm,1.0,CR,19,p03,,M,0.168,1.0,1.0,AP\n"
    "3,CHEST,WSD,p04.dcm,1.0,CR,28,p04,,M,0.143,1.0,1.0,PA\n"
    "4,CHEST,WSD,p05.dcm,1.0,CR,32,p05,,F,0.139,1.0,1.0,AP\n"
    "5,CHEST,WSD,p06.dcm,1.0,CR,75,p06,,M,0.168,1.0,1.0,AP\n"
    "6,CHEST,WSD,p07.dcm,1.0,CR,3,p07,,F,0.171,1.0,1.0,PA\n"
    "7,CHEST,WSD,p08.dcm,1.0,CR,54,p08,,F,0.143,1.0,1.0,PA\n"
    "8,CHEST,WSD,p09.dcm,1.0,CR,61,p09,,M,0.168,1.0,1.0,AP\n"
    "9,CHEST,WSD,p10.dcm,1.0,CR,47,p10,,M,0.194,1.0,1.0,AP\n"
    "10,CHEST,WSD,p11.dcm,1.0,CR,38,p11,,F,0.143,1.0,1.0,PA\n";

constexpr std::uint64_t kSeed = 2018;

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct Corpus {
  fs::path input;  // the hand-written tables
  fs::path out;    // the corpus
  rsna::SynthCorpusSummary summary;
  RsnaLabels truth;  // the hand-written tables, read
  double seconds = 0;
};

rsna::SynthCorpusOptions corpus_options(const fs::path& input, const fs::path& out) {
  rsna::SynthCorpusOptions o;
  o.labels_csv = (input / "labels.csv").string();
  o.class_info_csv = (input / "classes.csv").string();
  o.headers_csv = (input / "headers.csv").string();
  o.out_dir = out.string();
  o.seed = kSeed;
  o.threads = 2;
  return o;
}

// Made once per process: drawing 1024-pixel images is the slow part of these tests.
const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus made;
    made.input = test::scratch_dir("rsna_corpus_input");
    write_text(made.input / "labels.csv", kLabels);
    write_text(made.input / "classes.csv", kClasses);
    write_text(made.input / "headers.csv", kHeaders);
    made.out = test::scratch_dir("rsna_corpus_out");
    const auto start = std::chrono::steady_clock::now();
    made.summary = rsna::write_synth_corpus(corpus_options(made.input, made.out));
    made.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    made.truth = read_rsna_labels((made.input / "labels.csv").string(), (made.input / "classes.csv").string(),
                                  (made.input / "headers.csv").string());
    return made;
  }();
  return c;
}

fs::path dicom_of(const std::string& id) { return corpus().out / (id + ".dcm"); }

cv::Rect rect_of(const Box& b) {
  return cv::Rect(static_cast<int>(b.x), static_cast<int>(b.y), static_cast<int>(b.w), static_cast<int>(b.h)) &
         cv::Rect(0, 0, rsna::kRsnaImageSize, rsna::kRsnaImageSize);
}

}  // namespace

TEST_CASE("synth rsna writes one RSNA-shaped DICOM per patient", "[rsna_corpus]") {
  const Corpus& c = corpus();
  CHECK(c.summary.patients == 12);
  CHECK(c.summary.boxes == 8);
  REQUIRE(c.summary.warnings.size() == 1);  // passed on from the label reader
  CHECK(c.summary.warnings[0].find("p12") != std::string::npos);
  WARN("12 images at 1024 px in " << c.seconds << " s with 2 threads; " << c.summary.dicom_bytes / 12
                                  << " bytes per file");

  std::uintmax_t bytes = 0;
  for (const RsnaPatient& p : c.truth.patients) {
    INFO("patient " << p.patient_id);
    REQUIRE(fs::exists(dicom_of(p.patient_id)));
    bytes += fs::file_size(dicom_of(p.patient_id));
    DicomImage img = read_dicom(dicom_of(p.patient_id).string());
    CHECK(img.info.rows == 1024);
    CHECK(img.info.columns == 1024);
    CHECK(img.info.transfer_syntax_uid == "1.2.840.10008.1.2.4.50");
    CHECK(img.info.photometric_interpretation == "MONOCHROME2");
    CHECK(img.info.bits_allocated == 8);
    CHECK(img.info.samples_per_pixel == 1);
    CHECK(img.info.metadata.at("PatientID") == p.patient_id);
    if (p.patient_id == "p12") {  // not in the headers table: no invented values
      CHECK(img.info.metadata["PatientSex"].empty());
      CHECK(img.info.metadata["PatientAge"].empty());
      CHECK(img.info.metadata.count("PixelSpacing") == 0);
    } else {
      CHECK(img.info.metadata.at("PatientSex") == p.meta.at("PatientSex"));
      CHECK(img.info.metadata.at("PatientAge") == p.meta.at("PatientAge"));
      CHECK(img.info.metadata.at("ViewPosition") == p.meta.at("ViewPosition"));
      const std::string spacing = img.info.metadata.at("PixelSpacing");
      CHECK(std::stod(spacing.substr(0, spacing.find('\\'))) == Approx(std::stod(p.meta.at("PixelSpacing"))));
    }
  }
  CHECK(bytes == c.summary.dicom_bytes);
  // Only the patients' files and the two tables: no temporary file left behind.
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(c.out)) {
    ++files;
    CHECK(e.path().filename().string().front() != '.');
  }
  CHECK(files == 14);
}

TEST_CASE("synth rsna label tables round-trip", "[rsna_corpus]") {
  const Corpus& c = corpus();
  const RsnaLabels written = read_rsna_labels(c.summary.labels_csv, c.summary.class_info_csv, "");
  CHECK(written.warnings.empty());
  REQUIRE(written.patients.size() == c.truth.patients.size());
  for (std::size_t i = 0; i < written.patients.size(); ++i) {
    const RsnaPatient& a = written.patients[i];
    const RsnaPatient& b = c.truth.patients[i];
    INFO("patient " << b.patient_id);
    CHECK(a.patient_id == b.patient_id);
    CHECK(a.target == b.target);
    CHECK(a.boxes == b.boxes);
    CHECK(a.class_name == b.class_name);
  }
}

TEST_CASE("synth rsna draws opacities inside the labelled boxes only", "[rsna_corpus]") {
  const Corpus& c = corpus();
  for (const RsnaPatient& p : c.truth.patients) {
    INFO("patient " << p.patient_id << " class " << p.class_name);
    const rsna::SynthPatientImage drawn = rsna::synth_patient_image(p, kSeed);
    CHECK(drawn.chest.label == p.class_index);
    if (p.boxes.empty()) {
      CHECK(cv::countNonZero(drawn.chest.mask) == 0);
      continue;
    }
    // Every opacity pixel lies in a labelled box, and every box holds one.
    cv::Mat in_boxes = cv::Mat::zeros(drawn.chest.mask.size(), CV_8U);
    for (const Box& b : p.boxes) {
      in_boxes(rect_of(b)).setTo(1);
      CHECK(cv::countNonZero(drawn.chest.mask(rect_of(b))) > 0.3 * b.w * b.h);
    }
    cv::Mat outside;
    cv::bitwise_and(drawn.chest.mask, 1 - in_boxes, outside);
    CHECK(cv::countNonZero(outside) == 0);

    // In the decoded file the lung inside the boxes is brighter than the lung outside them
    // (an opacity is denser than aerated lung).
    const DicomImage file = read_dicom(dicom_of(p.patient_id).string());
    cv::Mat lung_in, lung_out;
    cv::bitwise_and(drawn.chest.lung_mask, in_boxes, lung_in);
    cv::bitwise_and(drawn.chest.lung_mask, 1 - in_boxes, lung_out);
    if (cv::countNonZero(lung_in) < 500 || cv::countNonZero(lung_out) < 500) continue;
    const double inside = cv::mean(file.pixels, lung_in)[0];
    const double elsewhere = cv::mean(file.pixels, lung_out)[0];
    CHECK(inside > elsewhere + 10.0);
  }
}

TEST_CASE("synth rsna files are the generator's pixels, JPEG-compressed", "[rsna_corpus]") {
  const Corpus& c = corpus();
  const RsnaPatient& p = c.truth.patients.front();
  const rsna::SynthPatientImage drawn = rsna::synth_patient_image(p, kSeed);
  cv::Mat decoded;
  read_dicom(dicom_of(p.patient_id).string()).pixels.convertTo(decoded, CV_8U);
  CHECK(cv::norm(decoded, drawn.gray8, cv::NORM_L1) / decoded.total() < 3.0);
}

TEST_CASE("synth rsna is deterministic whatever the threads and limit", "[rsna_corpus]") {
  const Corpus& c = corpus();
  const fs::path again = test::scratch_dir("rsna_corpus_again");
  rsna::SynthCorpusOptions o = corpus_options(c.input, again);
  o.threads = 1;
  o.limit = 3;
  const rsna::SynthCorpusSummary s = rsna::write_synth_corpus(o);
  CHECK(s.patients == 3);
  for (const char* id : {"p01", "p02", "p03"}) {
    INFO(id);
    CHECK(read_bytes(again / (std::string(id) + ".dcm")) == read_bytes(dicom_of(id)));
  }
  CHECK_FALSE(fs::exists(again / "p04.dcm"));
  const RsnaLabels limited = read_rsna_labels(s.labels_csv, s.class_info_csv, "");
  CHECK(limited.patients.size() == 3);

  SECTION("another seed gives other pixels") {
    const fs::path other = test::scratch_dir("rsna_corpus_other_seed");
    rsna::SynthCorpusOptions o2 = corpus_options(c.input, other);
    o2.limit = 1;
    o2.seed = kSeed + 1;
    rsna::write_synth_corpus(o2);
    CHECK(read_bytes(other / "p01.dcm") != read_bytes(dicom_of("p01")));
  }
}

TEST_CASE("synth rsna without a class table lets the generator choose and records it", "[rsna_corpus]") {
  const Corpus& c = corpus();
  const fs::path out = test::scratch_dir("rsna_corpus_no_classes");
  rsna::SynthCorpusOptions o = corpus_options(c.input, out);
  o.class_info_csv.clear();
  o.headers_csv.clear();
  o.limit = 3;  // p01 positive, p02 and p03 negative
  const rsna::SynthCorpusSummary s = rsna::write_synth_corpus(o);
  const RsnaLabels written = read_rsna_labels(s.labels_csv, s.class_info_csv, "");
  REQUIRE(written.patients.size() == 3);
  CHECK(written.patients[0].class_index == kRsnaLungOpacity);
  for (std::size_t i = 1; i < 3; ++i) {
    CHECK((written.patients[i].class_index == kRsnaNormal ||
           written.patients[i].class_index == kRsnaNoOpacityNotNormal));
  }
  CHECK(read_dicom((out / "p02.dcm").string()).info.metadata["PatientSex"].empty());
}

TEST_CASE("synth rsna reports unusable inputs", "[rsna_corpus]") {
  const fs::path out = test::scratch_dir("rsna_corpus_bad");
  rsna::SynthCorpusOptions o;
  o.labels_csv = (out / "missing.csv").string();
  o.out_dir = (out / "corpus").string();
  CHECK_THROWS_AS(rsna::write_synth_corpus(o), DataError);
  o.labels_csv.clear();
  CHECK_THROWS_AS(rsna::write_synth_corpus(o), std::invalid_argument);
}

// ---- preprocessing and cache --------------------------------------------------------------

namespace {

rsna::RsnaPreprocess params(int size, std::vector<double> window = {}, bool fast_decode = true) {
  rsna::RsnaPreprocess p;
  p.image_size = size;
  p.window = std::move(window);
  p.fast_decode = fast_decode;
  return p;
}

bool same_pixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

struct LogLines {
  std::vector<std::string> lines;
  rsna::RsnaImageCache::Log sink() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
  std::string all() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

}  // namespace

TEST_CASE("preprocess_dicom: min-max or window, area resize, 16-bit", "[rsna_corpus][rsna_cache]") {
  const std::string file = dicom_of("p01").string();
  const rsna::PreparedImage img = rsna::preprocess_dicom(file, params(64, {}, /*fast_decode=*/false));
  CHECK(img.original_rows == 1024);
  CHECK(img.original_cols == 1024);
  REQUIRE(img.pixels.type() == CV_16UC1);
  CHECK(img.pixels.rows == 64);

  const DicomImage raw = read_dicom(file);
  cv::Mat expected;
  resize_image(normalize_minmax(raw.pixels), 64, 64).convertTo(expected, CV_16U, 65535.0);
  CHECK(same_pixels(img.pixels, expected));
  const cv::Mat unit = rsna::unit_from_u16(img.pixels);
  double lo = 0, hi = 0;
  cv::minMaxLoc(unit, &lo, &hi);
  CHECK(lo >= 0.0);
  CHECK(hi <= 1.0);
  CHECK(hi > 0.5);

  const rsna::PreparedImage windowed = rsna::preprocess_dicom(file, params(64, {100.0, 80.0}, false));
  resize_image(window(raw.pixels, 100.0, 80.0), 64, 64).convertTo(expected, CV_16U, 65535.0);
  CHECK(same_pixels(windowed.pixels, expected));
  CHECK_FALSE(same_pixels(windowed.pixels, img.pixels));

  // fast_decode: the JPEG fast path's 1/8 scale (128 px, the smallest that keeps 64), then
  // the same normalisation and area resize.
  DicomReadOptions at_least_64;
  at_least_64.fast_jpeg = true;
  at_least_64.min_rows = at_least_64.min_columns = 64;
  const DicomImage eighth = read_dicom(file, at_least_64);
  REQUIRE(eighth.pixels.rows == 128);
  const rsna::PreparedImage fast = rsna::preprocess_dicom(file, params(64));
  CHECK(fast.original_rows == 1024);
  CHECK(fast.original_cols == 1024);
  resize_image(normalize_minmax(eighth.pixels), 64, 64).convertTo(expected, CV_16U, 65535.0);
  CHECK(same_pixels(fast.pixels, expected));

  CHECK_THROWS_AS(rsna::preprocess_dicom((corpus().out / "nobody.dcm").string(), params(64)), DataError);
  CHECK_THROWS_AS(params(64, {1.0}).validate(), std::invalid_argument);
  CHECK_THROWS_AS(params(64, {1.0, 0.5}).validate(), std::invalid_argument);
}

TEST_CASE("rsna cache: a second open hits with identical pixels", "[rsna_corpus][rsna_cache]") {
  const fs::path dir = test::scratch_dir("rsna_cache_hits");
  const std::string path = (dir / "sub" / "cache.h5").string();  // the folder is created
  const rsna::PreparedImage made = rsna::preprocess_dicom(dicom_of("p01").string(), params(64));
  LogLines log;
  {
    rsna::RsnaImageCache cache(path, params(64), log.sink());
    CHECK(cache.open_outcome() == "created");
    CHECK_FALSE(cache.get("p01"));
    cache.put("p01", made);
    CHECK(cache.entries() == 1);
    CHECK(cache.stats().misses == 1);
    CHECK(cache.stats().writes == 1);
  }
  rsna::RsnaImageCache cache(path, params(64), log.sink());
  CHECK(cache.open_outcome() == "opened");
  const auto hit = cache.get("p01");
  REQUIRE(hit);
  CHECK(same_pixels(hit->pixels, made.pixels));
  CHECK(hit->original_rows == 1024);
  CHECK(hit->original_cols == 1024);
  CHECK(cache.stats().hits == 1);
  // get_or_make does not call make on a hit.
  bool made_again = false;
  cache.get_or_make("p01", [&] {
    made_again = true;
    return made;
  });
  CHECK_FALSE(made_again);
  CHECK(log.lines.empty());
  // Ids that are not plain link names still work.
  cache.put("a/b%.", made);
  REQUIRE(cache.get("a/b%."));
  CHECK_FALSE(cache.get("a"));
}

TEST_CASE("rsna cache: another parameter rebuilds it", "[rsna_corpus][rsna_cache]") {
  const fs::path dir = test::scratch_dir("rsna_cache_params");
  const std::string path = (dir / "cache.h5").string();
  {
    rsna::RsnaImageCache cache(path, params(64));
    cache.put("p01", rsna::preprocess_dicom(dicom_of("p01").string(), params(64)));
  }
  LogLines log;
  SECTION("image_size") {
    rsna::RsnaImageCache cache(path, params(32), log.sink());
    CHECK(cache.open_outcome().rfind("rebuilt", 0) == 0);
    CHECK(log.all().find("image_size is 64, wanted 32") != std::string::npos);
    CHECK(cache.entries() == 0);
    CHECK_FALSE(cache.get("p01"));
  }
  SECTION("window") {
    rsna::RsnaImageCache cache(path, params(64, {128.0, 256.0}), log.sink());
    CHECK(log.all().find("window is 'min-max', wanted 'center=128 width=256'") != std::string::npos);
    CHECK(cache.entries() == 0);
  }
  SECTION("multiframe") {
    rsna::RsnaPreprocess p = params(64);
    p.multiframe = MultiFramePolicy::error;
    rsna::RsnaImageCache cache(path, p, log.sink());
    CHECK(log.all().find("multiframe") != std::string::npos);
    CHECK(cache.entries() == 0);
  }
  SECTION("decode") {
    rsna::RsnaImageCache cache(path, params(64, {}, /*fast_decode=*/false), log.sink());
    CHECK(log.all().find("decode is 'fast', wanted 'exact'") != std::string::npos);
    CHECK(cache.entries() == 0);
  }
  SECTION("the same parameters keep it") {
    rsna::RsnaImageCache cache(path, params(64), log.sink());
    CHECK(cache.entries() == 1);
    CHECK(log.lines.empty());
  }
}

TEST_CASE("rsna cache: a damaged file is rebuilt, never trusted", "[rsna_corpus][rsna_cache]") {
  const fs::path dir = test::scratch_dir("rsna_cache_damaged");
  const std::string path = (dir / "cache.h5").string();
  const rsna::PreparedImage made = rsna::preprocess_dicom(dicom_of("p01").string(), params(128));
  LogLines log;

  SECTION("garbage") {
    write_text(path, std::string(4096, 'x') + "not an HDF5 file");
    rsna::RsnaImageCache cache(path, params(128), log.sink());
    CHECK(cache.open_outcome() == "rebuilt (not an HDF5 file)");
    CHECK(log.all().find("rebuilding") != std::string::npos);
    CHECK(cache.usable());
    cache.put("p01", made);
    REQUIRE(cache.get("p01"));
  }
  SECTION("truncated or overwritten: every entry is either right or a miss") {
    const std::vector<std::string> ids = {"p01", "p04", "p06"};
    std::vector<rsna::PreparedImage> images;
    {
      rsna::RsnaImageCache cache(path, params(128));
      for (const auto& id : ids) {
        images.push_back(rsna::preprocess_dicom(dicom_of(id).string(), params(128)));
        cache.put(id, images.back());
      }
    }
    const std::uintmax_t size = fs::file_size(path);
    for (int damage = 0; damage < 3; ++damage) {
      INFO("damage " << damage);
      if (damage == 0) {
        fs::resize_file(path, size / 2);
      } else {
        std::string bytes = read_bytes(path);
        // Overwrite a stretch in the data (1) or at the start, where the superblock is (2).
        const std::size_t at = damage == 1 ? bytes.size() * 2 / 3 : 0;
        for (std::size_t i = at; i < std::min(bytes.size(), at + 2000); ++i) bytes[i] = static_cast<char>(i * 7);
        write_text(path, bytes);
      }
      {
        rsna::RsnaImageCache cache(path, params(128), log.sink());
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (auto hit = cache.get(ids[i])) CHECK(same_pixels(hit->pixels, images[i].pixels));
        }
        // The cache still works afterwards.
        cache.put("p12", made);
        CHECK(cache.get("p12"));
      }
      // Put back the complete file for the next kind of damage.
      if (damage < 2) {
        fs::remove(path);
        rsna::RsnaImageCache fresh(path, params(128));
        for (std::size_t i = 0; i < ids.size(); ++i) fresh.put(ids[i], images[i]);
      }
    }
  }
}

TEST_CASE("rsna cache: one process at a time; concurrent threads are safe", "[rsna_corpus][rsna_cache]") {
  const fs::path dir = test::scratch_dir("rsna_cache_threads");
  const std::string path = (dir / "cache.h5").string();
  rsna::RsnaImageCache cache(path, params(32));
  {
    LogLines log;
    rsna::RsnaImageCache second(path, params(32), log.sink());  // as another process would
    CHECK_FALSE(second.usable());
    CHECK(second.open_outcome().rfind("not used", 0) == 0);
    CHECK_FALSE(second.get("p01"));
    CHECK(log.all().find("without the cache") != std::string::npos);
  }
  const std::vector<std::string> ids = {"p01", "p02", "p03", "p04", "p05", "p06"};
  std::vector<rsna::PreparedImage> expected;
  for (const auto& id : ids) expected.push_back(rsna::preprocess_dicom(dicom_of(id).string(), params(32)));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (std::size_t k = 0; k < ids.size(); ++k) {
          const std::size_t i = (k + static_cast<std::size_t>(t)) % ids.size();
          const auto got = cache.get_or_make(ids[i], [&] {
            return rsna::preprocess_dicom(dicom_of(ids[i]).string(), params(32));
          });
          if (!same_pixels(got.pixels, expected[i].pixels)) ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(cache.entries() == ids.size());
  CHECK(cache.stats().hits + cache.stats().misses == 4 * 3 * ids.size());
  CHECK(cache.stats().hits >= 4 * 3 * ids.size() - 4 * ids.size());
}

// The fuzz targets (see targets.h): seeds, readers and the campaign loop.
#include "targets.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <typeinfo>

#include <opencv2/core.hpp>

#include "chestlab/engine/config.h"
#include "chestlab/engine/runfile.h"
#include "chestlab/engine/split_file.h"
#include "chestlab/errors.h"
#include "chestlab/imaging/dicom.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/rsna/submission.h"

// DCMTK, for the uncompressed DICOM seeds (the imaging package writes only JPEG Baseline).
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"

extern char** environ;

namespace fs = std::filesystem;

namespace chestlab::fuzz {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::Read: return "read";
    case Verdict::Refused: return "refused";
    case Verdict::Crash: return "crash";
    case Verdict::Hang: return "hang";
  }
  return "?";
}

namespace {

// ---- small helpers --------------------------------------------------------------------

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("fuzz: cannot read seed " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const fs::path& path, const Bytes& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("fuzz: cannot write " + path.string());
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  char* name = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : type.name();
  std::free(name);
  return out;
}

std::string one_line(std::string text, std::size_t at_most = 300) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  if (text.size() > at_most) text = text.substr(0, at_most) + "...";
  return text;
}

bool has_negative(const std::vector<std::int64_t>& shape) {
  return std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; });
}

Outcome read_ok() { return {Verdict::Read, ""}; }
Outcome crash(std::string what) { return {Verdict::Crash, one_line(std::move(what))}; }

// A DataError is a proper refusal when it names the file read and gives a reason.
Outcome refused_data(const DataError& e, const std::string& path, const std::vector<std::string>& files) {
  if (std::string(e.what()).empty() || e.reason_text.empty()) return crash("DataError without a reason");
  if (std::find(files.begin(), files.end(), e.file) == files.end() && e.file != path)
    return crash("DataError names '" + e.file + "', not the file read: " + e.what());
  return {Verdict::Refused, one_line(e.reason_text)};
}

// Runs `body`; DataError is the documented refusal, any other exception a crash.
template <typename Body>
Outcome expect_data_errors(const std::string& path, const std::vector<std::string>& files, Body body) {
  try {
    return body();
  } catch (const DataError& e) {
    return refused_data(e, path, files);
  } catch (const std::exception& e) {
    return crash("undocumented " + type_name(typeid(e)) + ": " + e.what());
  } catch (...) {
    return crash("a non-std exception");
  }
}

// ---- DICOM ----------------------------------------------------------------------------

// Offsets where DICOM element headers (and items, fragments) sit: group numbers of the
// meta, identification, patient, acquisition, image and pixel groups, both byte orders.
std::vector<std::size_t> dicom_hot_spots(const Bytes& data) {
  static const unsigned char kGroups[][2] = {{0x02, 0x00}, {0x08, 0x00}, {0x10, 0x00}, {0x18, 0x00},
                                             {0x20, 0x00}, {0x28, 0x00}, {0xe0, 0x7f}, {0xfe, 0xff},
                                             {0x00, 0x02}, {0x00, 0x08}, {0x00, 0x28}, {0x7f, 0xe0}};
  std::vector<std::size_t> hot;
  const std::size_t scan = std::min<std::size_t>(data.size(), 1 << 16);
  for (std::size_t i = 0; i + 4 <= scan && hot.size() < 4000; i += 2) {
    const auto* b = reinterpret_cast<const unsigned char*>(data.data() + i);
    for (const auto& g : kGroups)
      if (b[0] == g[0] && b[1] == g[1]) {
        hot.push_back(i);
        break;
      }
  }
  for (std::size_t at : find_all(data, std::string("\xfe\xff\x00\xe0", 4))) hot.push_back(at);  // items
  for (std::size_t at : find_all(data, std::string("\xe0\x7f\x10\x00", 4))) hot.push_back(at);  // pixel data
  return hot;
}

// A CT-like signed 16-bit image with rescale and window, written uncompressed by DCMTK in
// `xfer` (file meta header unless `dataset_only`).
void write_native_dicom(const fs::path& path, E_TransferSyntax xfer, bool dataset_only) {
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  const Uint16 rows = 24, cols = 20;
  ds->putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
  ds->putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1143.1");
  ds->putAndInsertString(DCM_Modality, "CT");
  ds->putAndInsertString(DCM_PatientID, "fuzz-ct");
  ds->putAndInsertString(DCM_PatientSex, "F");
  ds->putAndInsertString(DCM_PixelSpacing, "0.7\\0.7");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_Rows, rows);
  ds->putAndInsertUint16(DCM_Columns, cols);
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 12);
  ds->putAndInsertUint16(DCM_HighBit, 11);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 1);
  ds->putAndInsertString(DCM_RescaleSlope, "1");
  ds->putAndInsertString(DCM_RescaleIntercept, "-1024");
  ds->putAndInsertString(DCM_WindowCenter, "40");
  ds->putAndInsertString(DCM_WindowWidth, "400");
  std::vector<Uint16> pixels(std::size_t(rows) * cols);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<Uint16>((i * 37) % 2000);
  ds->putAndInsertUint16Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(pixels.size()));
  const OFCondition cond = dataset_only ? ds->saveFile(path.c_str(), xfer)
                                        : ff.saveFile(path.c_str(), xfer);
  if (cond.bad()) throw std::runtime_error("fuzz: cannot write " + path.string() + ": " + cond.text());
}

std::vector<Seed> dicom_seeds(const Environment& env) {
  const fs::path dir = env.work_dir / "seeds";
  fs::create_directories(dir);
  std::vector<Seed> seeds;
  auto add = [&](const std::string& name, const fs::path& file) {
    Seed s{name, read_bytes(file), {}, false};
    s.hot = dicom_hot_spots(s.data);
    seeds.push_back(std::move(s));
  };
  {  // the RSNA shape, as chestlab's own writer makes it
    cv::Mat gray(40, 48, CV_8UC1);
    for (int r = 0; r < gray.rows; ++r)
      for (int c = 0; c < gray.cols; ++c) gray.at<unsigned char>(r, c) = static_cast<unsigned char>((r * 5 + c * 3) % 256);
    DicomWriteInfo info;
    info.patient_id = "fuzz-seed-0001";
    info.patient_sex = "M";
    info.patient_age = "61";
    info.view_position = "PA";
    info.pixel_spacing_mm = 0.168;
    write_dicom_jpeg_baseline((dir / "rsna_like.dcm").string(), gray, info);
    add("written:rsna_like_jpeg_baseline", dir / "rsna_like.dcm");
  }
  write_native_dicom(dir / "ct_explicit_le.dcm", EXS_LittleEndianExplicit, false);
  add("written:ct_explicit_le", dir / "ct_explicit_le.dcm");
  write_native_dicom(dir / "ct_implicit_le.dcm", EXS_LittleEndianImplicit, false);
  add("written:ct_implicit_le", dir / "ct_implicit_le.dcm");
  write_native_dicom(dir / "ct_explicit_be.dcm", EXS_BigEndianExplicit, false);
  add("written:ct_explicit_be", dir / "ct_explicit_be.dcm");
  write_native_dicom(dir / "ct_no_meta.dcm", EXS_LittleEndianImplicit, true);
  add("written:ct_no_meta", dir / "ct_no_meta.dcm");
  if (env.shared_data) {
    // Every shared file but JPEG 2000, which the reader refuses by design (its refusal is
    // covered by the DICOM tests).
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(*env.shared_data / "dicom"))
      if (e.path().extension() == ".dcm" && e.path().filename() != "693_J2KR.dcm") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) add("shared:" + f.filename().string(), f);
  }
  return seeds;
}

// The header's size, or on the JPEG fast path that size scaled by 1/2, 1/4 or 1/8 (rounded
// up) with a note saying so.
bool matches_header(const DicomImage& image) {
  for (int d : {1, 2, 4, 8}) {
    if (image.pixels.rows != (image.info.rows + d - 1) / d || image.pixels.cols != (image.info.columns + d - 1) / d)
      continue;
    if (d == 1) return true;
    for (const std::string& note : image.info.notes)
      if (note.rfind("JPEG fast path: ", 0) == 0) return true;
  }
  return false;
}

Outcome read_dicom_target(const std::string& path, std::uint64_t iteration) {
  return expect_data_errors(path, {}, [&] {
    DicomReadOptions opts;
    // Iteration 0 (the unmutated seeds' check) reads with the defaults.
    opts.multiframe = iteration % 2 ? MultiFramePolicy::error : MultiFramePolicy::first;
    opts.apply_window = iteration % 3 == 2;
    // The JPEG fast path on every other pair of iterations, asking for 0..256 px.
    opts.fast_jpeg = iteration % 4 >= 2;
    opts.min_rows = opts.min_columns = static_cast<int>(iteration % 5) * 64;
    const DicomImage image = read_dicom(path, opts);
    if (image.pixels.empty() || image.pixels.type() != CV_32FC1 || !matches_header(image))
      return crash("read, but the image does not match its header");
    return read_ok();
  });
}

// ---- RSNA tables ----------------------------------------------------------------------

// A small, consistent set of the three label tables, built in code: negatives, a patient
// with two boxes, quoted fields, a class-table duplicate row.
struct Tables {
  std::string labels, classes, headers;
};

Tables builtin_tables() {
  Tables t;
  t.labels = "patientId,x,y,width,height,Target\n";
  t.classes = "patientId,class\n";
  t.headers = ",BodyPartExamined,ConversionType,Filename,InstanceNumber,Modality,PatientAge,PatientID,"
              "PatientOrientation,PatientSex,PixelSpacing,SamplesPerPixel,SeriesNumber,ViewPosition\n";
  const char* kClasses[] = {"Normal", "No Lung Opacity / Not Normal", "Lung Opacity"};
  for (int i = 0; i < 12; ++i) {
    const std::string id = fmt::format("{:08x}-fuzz-4c2f-b5b4-{:012x}", 0x1000 + i * 7919, 0xabc000 + i);
    const int cls = i % 3;
    const int boxes = cls == 2 ? 1 + i % 2 : 0;
    if (boxes == 0) {
      t.labels += id + ",,,,,0\n";
      t.classes += id + "," + (cls == 1 ? "\"No Lung Opacity / Not Normal\"" : kClasses[cls]) + "\n";
    }
    for (int b = 0; b < boxes; ++b) {
      t.labels += fmt::format("{},{}.0,{}.0,{}.0,{}.0,1\n", id, 100 + 40 * b + i, 150 + i, 200 + b, 300 + 3 * i);
      t.classes += id + ",Lung Opacity\n";
    }
    t.headers += fmt::format("{},CHEST,WSD,{}.dcm,1.0,CR,{},{},,{},0.{},1.0,1.0,{}\n", i, id, 20 + 3 * i, id,
                             i % 2 ? "M" : "F", 139 + i, i % 2 ? "PA" : "AP");
  }
  return t;
}

// The first `patients` patients of the shared tables (all their rows).
Tables shared_tables(const fs::path& rsna, std::size_t patients) {
  Tables t;
  std::set<std::string> ids;
  {
    std::ifstream in(rsna / "stage_2_train_labels.csv");
    std::string line;
    std::getline(in, line);
    t.labels = line + "\n";
    while (std::getline(in, line)) {
      const std::string id = line.substr(0, line.find(','));
      if (!ids.count(id) && ids.size() == patients) break;
      ids.insert(id);
      t.labels += line + "\n";
    }
  }
  {
    std::ifstream in(rsna / "stage_2_detailed_class_info.csv");
    std::string line;
    std::getline(in, line);
    t.classes = line + "\n";
    while (std::getline(in, line))
      if (ids.count(line.substr(0, line.find(',')))) t.classes += line + "\n";
  }
  {
    gzFile gz = gzopen((rsna / "kaggle_stage_2_train_images_dicom_headers.csv.gz").c_str(), "rb");
    if (!gz) throw std::runtime_error("fuzz: cannot open the shared DICOM header table");
    char buffer[1 << 14];
    std::string line;
    bool first = true;
    while (gzgets(gz, buffer, sizeof buffer)) {
      line += buffer;
      if (line.back() != '\n') continue;
      if (first) {
        t.headers = line;
        first = false;
      } else {
        for (const std::string& id : ids)
          if (line.find("," + id + ",") != std::string::npos) {
            t.headers += line;
            break;
          }
      }
      line.clear();
    }
    gzclose(gz);
  }
  return t;
}

Bytes gzip(const Bytes& plain, const fs::path& scratch) {
  gzFile gz = gzopen(scratch.c_str(), "wb9");
  if (!gz) throw std::runtime_error("fuzz: cannot write " + scratch.string());
  gzwrite(gz, plain.data(), static_cast<unsigned>(plain.size()));
  gzclose(gz);
  return read_bytes(scratch);
}

std::vector<Seed> text_seeds(const std::vector<std::pair<std::string, std::string>>& named) {
  std::vector<Seed> seeds;
  for (const auto& [name, text] : named) seeds.push_back({name, text, {}, true});
  return seeds;
}

const char* const kSubmission =
    "patientId,PredictionString\n"
    "0004cfab-14fd-4e49-80ba-63a80b6bddd6,0.9512 264 152 213 379 0.5020 562 152 256 453\n"
    "00313ee0-9eaa-42f4-b0ab-c148ed3241cd,\n"
    "00322d4d-1c29-4943-afc9-b6754be640eb,\"0.3 10.5 20.25 30 40\"\n"
    "003d8fa0-6bf1-40ed-b54c-ac657f8495c5,0.75 0 0 1024 1024\n"
    "\n"
    "00436515-870c-4b36-a041-de91049b9ab4,0.1 562 152 256 453 0.2 100 100 1 1\n";

// ---- experiment files -----------------------------------------------------------------

ComponentInfo component(Kind kind, std::string name, Schema params) {
  ComponentInfo info;
  info.kind = kind;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.params = std::move(params);
  return info;
}

// The components the seed files name, with parameters shaped like the real plugins'
// (bounds, choices, lists, a rule across parameters), so that a mutant reaches every part
// of the validator; the host's plugin registry plays this part in chestlab.
class FuzzCatalog : public SchemaCatalog {
 public:
  FuzzCatalog() {
    add(component(Kind::Dataset, "synthetic_cxr",
                  {param_int("count", 240, "images").range(4, 100000),
                   param_int("image_size", 64, "side").range(16, 4096),
                   param_float("positive_fraction", 0.7, "share with a mask").range(0, 1),
                   param_string("root", "", "a folder")}));
    add(component(Kind::Model, "resnet_seg",
                  {param_int("channels", 16, "width").range(1, 1024), param_int("depth", 2, "stages").range(1, 6),
                   param_int("blocks", 1, "per stage").range(1, 8),
                   param_float("bn_momentum", 0.1, "batch norm").above(0).below(1)}));
    ComponentInfo unet = component(Kind::Model, "unet",
                                   {param_ints("widths", {8, 16}, "per stage").range(1, 512),
                                    param_float("dropout", 0.0, "rate").range(0, 1),
                                    param_string("act", "relu", "activation").one_of({"relu", "gelu"}),
                                    param_int("lo", 1, "lower"), param_int("hi", 2, "upper")});
    unet.checks = {param_check({"lo", "hi"}, "lo <= hi", [](const Params& p) {
      return p.integer("lo") <= p.integer("hi") ? std::string() : "must not exceed hi";
    })};
    add(unet);
    add(component(Kind::Loss, "bce_jaccard", {param_float("jaccard_weight", 1.0, "weight").at_least(0)}));
    add(component(Kind::Scheduler, "constant", {}));
    add(component(Kind::Scheduler, "cosine", {param_float("min_lr", 0.0, "floor").at_least(0)}));
    add(component(Kind::Scheduler, "step",
                  {param_int("step", 10, "epochs").at_least(1), param_float("gamma", 0.1, "factor").above(0)}));
    add(component(Kind::Metric, "mean_iou", {param_float("threshold", 0.5, "binarize").range(0, 1)}));
    add(component(Kind::Metric, "pixel_accuracy", {param_float("threshold", 0.5, "binarize").range(0, 1)}));
    augmentations_["hflip"] = {param_float("p", 1.0, "probability").range(0, 1)};
    augmentations_["rotate"] = {param_float("p", 1.0, "probability").range(0, 1),
                                param_float("degrees", 10.0, "max angle").range(0, 180)};
  }
  const ComponentInfo* find(Kind kind, const std::string& name) const override {
    auto it = components_.find({kind, name});
    return it == components_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> names(Kind kind) const override {
    std::vector<std::string> out;
    for (const auto& [key, info] : components_)
      if (key.first == kind) out.push_back(key.second);
    return out;
  }
  const Schema* augmentation(const std::string& type) const override {
    auto it = augmentations_.find(type);
    return it == augmentations_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> augmentation_types() const override {
    std::vector<std::string> out;
    for (const auto& [name, schema] : augmentations_) out.push_back(name);
    return out;
  }

 private:
  void add(ComponentInfo info) { components_[{info.kind, info.name}] = std::move(info); }
  std::map<std::pair<Kind, std::string>, ComponentInfo> components_;
  std::map<std::string, Schema> augmentations_;
};

const FuzzCatalog& catalog() {
  static const FuzzCatalog instance;
  return instance;
}

const char* const kRichExperiment = R"(# every kind of value the format has
[experiment]
name = "fuzz-rich"
seed = 11
output = 'out/dir'

[dataset]
plugin = "synthetic_cxr"
count = 64
image_size = 32
on_error = "skip"

[[dataset.augment]]
type = "hflip"
p = 0.5

[[dataset.augment]]
type = "rotate"
p = 0.25
degrees = 12.5

[model]
plugin = "unet"
widths = [8, 16, 32]
dropout = 0.1
act = "gelu"
lo = 1
hi = 3

[loss]
plugin = "bce_jaccard"
jaccard_weight = 0.5

[optimizer]
name = "sgd"
lr = 1e-2
momentum = 0.8
nesterov = true
weight_decay = 1e-4

[scheduler]
plugin = "step"
warmup_epochs = 1
step = 3
gamma = 0.5

[[metrics]]
plugin = "mean_iou"
name = "iou50"
threshold = 0.5

[[metrics]]
plugin = "mean_iou"
name = "iou75"
threshold = 0.75
monitor = true
mode = "max"

[[metrics]]
plugin = "pixel_accuracy"

[train]
epochs = 3
batch_size = 4
device = "cpu"
workers = 1
early_stopping = 2
grad_clip = 1.0
deterministic = true

[cv]
mode = "holdout"
holdout = [0.6, 0.2, 0.2]
holdout_order = "random"
)";

const char* const kInlineExperiment =
    "experiment = { name = \"fuzz-inline\", seed = 3 }\n"
    "dataset = { plugin = \"synthetic_cxr\", count = 40, image_size = 32, augment = [{ type = \"hflip\" }] }\n"
    "model = { plugin = \"resnet_seg\", channels = 4, depth = 2 }\n"
    "loss.plugin = \"bce_jaccard\"\n"
    "metrics = [{ plugin = \"mean_iou\", monitor = true }, { plugin = \"pixel_accuracy\" }]\n"
    "cv = { folds = 3, run_folds = [0, 2], stratify = false }\n";

std::string experiment_text(const Environment& env, const char* relative) {
  const fs::path file = env.source_dir / relative;
  return fs::exists(file) ? read_bytes(file) : std::string();
}

std::vector<Seed> experiment_seeds(const Environment& env) {
  std::vector<std::pair<std::string, std::string>> named;
  for (const char* file : {"tests/data/tiny.toml", "experiments/quickstart.toml"}) {
    const std::string text = experiment_text(env, file);
    if (!text.empty()) named.emplace_back(file, text);
  }
  named.emplace_back("builtin:rich", kRichExperiment);
  named.emplace_back("builtin:inline", kInlineExperiment);
  return text_seeds(named);
}

// A file that was read must write a resolved form that reads back to the same experiment:
// what chestlab writes (resume and rerun re-read it), it reads.
Outcome check_resolved(const ExperimentConfig& c, const std::string& path) {
  ExperimentConfig again;
  try {
    again = parse_experiment(c.resolved_toml(), path + ":resolved", c.base_dir, {}, catalog());
  } catch (const std::exception& e) {
    return crash("read, but its resolved form does not read back: " + std::string(e.what()));
  }
  if (again.resolved_toml() != c.resolved_toml() || again.hash() != c.hash())
    return crash("read, but its resolved form reads back as another experiment");
  return read_ok();
}

template <typename Body>
Outcome expect_config_errors(Body body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    if (std::string(e.what()).empty()) return crash("ConfigError without a message");
    return {Verdict::Refused, one_line(e.what())};
  } catch (const std::exception& e) {
    return crash("undocumented " + type_name(typeid(e)) + ": " + e.what());
  } catch (...) {
    return crash("a non-std exception");
  }
}

// ---- run files ------------------------------------------------------------------------

std::vector<std::size_t> hdf5_hot_spots(const Bytes& data) {
  std::vector<std::size_t> hot{0};
  for (const char* signature : {"\x89HDF", "OHDR", "OCHK", "TREE", "HEAP", "SNOD", "GCOL", "BTHD", "BTLF", "FRHP",
                                "FHDB", "FHIB", "FSHD", "FSSE", "status", "best_epoch", "history", "weights",
                                "resume", "config", "next_epoch", "metric"})
    for (std::size_t at : find_all(data, signature)) hot.push_back(at);
  return hot;
}

Seed runfile_seed(const std::string& name, const fs::path& file) {
  Seed s{name, read_bytes(file), {}, false};
  s.hot = hdf5_hot_spots(s.data);
  return s;
}

std::vector<float> pattern(std::size_t n, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 7) % 13) - 0.5f;
  return v;
}

// A run file shaped like a real one (2 folds: one complete with its best weights and resume
// state, one interrupted; summary, skipped samples, a test row), through the engine's writer.
void write_synthetic_run(const fs::path& path, const std::string& config_toml, bool with_folds) {
  fs::remove(path);
  RunMeta meta{"fuzz", "20260101-000000-0123abcd", "0123abcd4567", 7, "mean_iou", MonitorMode::Max};
  chestlab::Environment env;
  env.libtorch_version = "1.13.1";
  env.device = "cpu";
  env.threads = 2;
  env.hostname = "fuzz-host";
  env.experiment_file = "tests/data/tiny.toml";
  env.base_dir = "/nonexistent/fuzz";
  env.plugins = {{"resnet_seg", "model", "1.0.0", "/p/libresnet_seg.so", "ab12"},
                 {"mean_iou", "metric", "1.0.0", "/p/libmean_iou.so", "cd34"}};
  RunFile file = RunFile::create(path.string(), meta, config_toml, env);
  if (!with_folds) return;
  const std::vector<std::string> metrics{"mean_iou", "pixel_accuracy"};
  file.transaction([&](RunWriter& w) {
    for (int k = 0; k < 2; ++k) {
      std::vector<std::string> train, val;
      for (int i = 0; i < 12; ++i) (i % 2 == k ? val : train).push_back(fmt::format("synth-{}", i));
      w.begin_fold(k, metrics, train, val);
      const int epochs = k == 0 ? 3 : 1;
      for (int e = 0; e < epochs; ++e)
        w.append_epoch(k, {e, 0.003 / (e + 1), 0.9 - 0.1 * e, 0.95 - 0.1 * e, 0.25, {0.3 + 0.1 * e, 0.8 + 0.01 * e}});
      w.set_fold_best(k, epochs - 1, 0.3 + 0.1 * (epochs - 1),
                      {{"stem.weight", {4, 1, 3, 3}, pattern(36, 0.1f)},
                       {"stem.bias", {4}, pattern(4, 0.2f)},
                       {"bn.running_var", {4}, pattern(4, 0.3f)},
                       {"bn.num_batches_tracked", {}, {12.0f}},
                       {"head.weight", {1, 4, 1, 1}, pattern(4, 0.4f)}});
      ResumeBlob blob;
      blob.next_epoch = epochs;
      blob.parts["model"] = std::string(600, 'm') + std::string("\0\1\2PK\3\4", 8);
      blob.parts["optimizer"] = std::string(300, 'o');
      w.set_fold_resume(k, blob);
      w.set_fold_status(k, k == 0 ? FoldStatus::Complete : FoldStatus::Interrupted);
    }
    w.add_skipped("synth-99", "/data/synth-99.dcm", "truncated JPEG stream");
    w.write_summary();
    w.write_test({{"mean_iou", 0.42}, {"loss", 0.7}});
    w.set_status(RunStatus::Interrupted);
  });
}

Outcome read_runfile_target(const std::string& path, std::uint64_t) {
  return expect_data_errors(path, {}, [&] {
    RunFile::open(path);
    const RunInfo names_only = read_run(path, LoadWeights::No);
    const RunInfo run = read_run(path, LoadWeights::Yes);
    for (const FoldInfo& fold : run.folds) {
      read_fold_resume(path, fold.index);
      for (const NamedArray& a : fold.weights) {
        std::int64_t count = 1;
        for (std::int64_t d : a.shape) count *= d;
        if (has_negative(a.shape) || static_cast<std::int64_t>(a.values.size()) != count)
          return crash(fmt::format("read, but weight '{}' has {} values for its shape", a.name, a.values.size()));
      }
    }
    compute_summary(run.folds);
    if (names_only.folds.size() != run.folds.size()) return crash("read twice, two different fold lists");
    return read_ok();
  });
}

// ---- the CLI on run files ---------------------------------------------------------------

struct Process {
  int exit_code = -1;  // or 128 + signal
  bool timed_out = false;
  std::string output;
};

// Runs argv (stdout and stderr to `log`) in its own process group, killed at the deadline.
Process run_process(const std::vector<std::string>& argv, const fs::path& log, double timeout_s) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  Process p;
  if (rc != 0) throw std::runtime_error("fuzz: cannot start " + argv[0] + ": " + std::strerror(rc));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      p.timed_out = true;
      break;
    }
    usleep(5000);
  }
  kill(-pid, SIGKILL);  // anything the command left behind in its group
  if (WIFEXITED(status)) p.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) p.exit_code = 128 + WTERMSIG(status);
  std::ifstream in(log);
  std::ostringstream text;
  text << in.rdbuf();
  p.output = text.str();
  return p;
}

std::string last_lines(const std::string& text, int n) {
  std::size_t at = text.size();
  for (int i = 0; i <= n && at != std::string::npos && at > 0; ++i) at = text.rfind('\n', at - 1);
  return one_line(at == std::string::npos ? text : text.substr(at + 1), 500);
}

// runfile-cli gives each mutant to one of these in turn; runfile-predict to `predict`.
const char* const kCliCommands[] = {"compare", "report", "curves", "resume", "export"};

std::vector<std::string> cli_argv(const Environment& env, const std::string& command, const fs::path& run,
                                  const fs::path& dir) {
  const std::string exe = env.chestlab_exe, r = run.string();
  if (command == "compare") return {exe, "compare", r, "--metric", "mean_iou"};
  if (command == "report") return {exe, "report", r, "--out", (dir / "report.html").string()};
  if (command == "curves") return {exe, "curves", r, "--out", (dir / "curves").string()};
  if (command == "resume") return {exe, "run", "--resume", r, "--quiet"};
  if (command == "predict")
    return {exe, "predict", "--run", r, "--images", (env.work_dir / "rsna_corpus").string(), "--out", (dir / "sub.csv").string()};
  return {exe, "export", "--run", r, "--fold", "0", "--out", (dir / "model.pt").string()};
}

// The verdict of a command given a (possibly damaged) run file.
Outcome cli_outcome(const Process& p, const std::string& command) {
  if (p.timed_out) return {Verdict::Hang, command + ": no answer in time: " + last_lines(p.output, 3)};
  // `report` over a folder leaves out a run file it cannot read, with a warning naming why.
  if (p.exit_code == 0 && command == "report") {
    const auto at = p.output.find("warning: left out: ");
    if (at != std::string::npos) return {Verdict::Refused, command + ": " + one_line(p.output.substr(at, p.output.find('\n', at) - at))};
  }
  if (p.exit_code == 0) return read_ok();
  const bool message = p.output.find("error: ") != std::string::npos;
  if ((p.exit_code == 2 || p.exit_code == 3) && message) return {Verdict::Refused, command + ": " + last_lines(p.output, 1)};
  return crash(fmt::format("{}: exit {}{}: {}", command, p.exit_code,
                           p.exit_code > 128 ? fmt::format(" (signal {}: {})", p.exit_code - 128, strsignal(p.exit_code - 128)) : "",
                           last_lines(p.output, 4)));
}

}  // namespace

// ---- the targets ------------------------------------------------------------------------

std::vector<Target> make_targets(const Environment& env, const std::vector<std::string>& groups) {
  auto wanted = [&](const std::string& group) {
    return groups.empty() || std::find(groups.begin(), groups.end(), group) != groups.end();
  };
  fs::create_directories(env.work_dir / "seeds");
  std::vector<Target> targets;

  if (wanted("dicom")) targets.push_back({"dicom", "dicom", ".dcm", 20, dicom_seeds(env), read_dicom_target, true});

  if (wanted("csv")) {
    const Tables builtin = builtin_tables();
    std::optional<Tables> shared;
    if (env.shared_data && fs::exists(*env.shared_data / "rsna" / "stage_2_train_labels.csv"))
      shared = shared_tables(*env.shared_data / "rsna", 40);
    // Each table is mutated beside valid copies of the other two, so that it is read in full.
    const fs::path fixed = env.work_dir / "seeds";
    write_bytes(fixed / "labels.csv", builtin.labels);
    write_bytes(fixed / "classes.csv", builtin.classes);
    write_bytes(fixed / "headers.csv", builtin.headers);
    if (shared) {
      write_bytes(fixed / "shared_labels.csv", shared->labels);
      write_bytes(fixed / "shared_classes.csv", shared->classes);
      write_bytes(fixed / "shared_headers.csv", shared->headers);
    }
    // Which companions a mutant of a given seed is read with: the seed's name says.
    auto companions = [fixed](const std::string& seed_name) {
      const bool s = seed_name.rfind("shared", 0) == 0;
      return std::array<std::string, 3>{(fixed / (s ? "shared_labels.csv" : "labels.csv")).string(),
                                        (fixed / (s ? "shared_classes.csv" : "classes.csv")).string(),
                                        (fixed / (s ? "shared_headers.csv" : "headers.csv")).string()};
    };
    auto seeds_of = [&](std::string Tables::*table) {
      std::vector<std::pair<std::string, std::string>> named{{"builtin", builtin.*table}};
      named.emplace_back("builtin-crlf", [&] {
        std::string t;
        for (char c : builtin.*table) t += c == '\n' ? std::string("\r\n") : std::string(1, c);
        return "\xEF\xBB\xBF" + t;
      }());
      if (shared) named.emplace_back("shared", (*shared).*table);
      return text_seeds(named);
    };
    // The seed each mutant came from is not passed to `read`: the file's suffix carries it.
    for (int which = 0; which < 3; ++which) {
      std::string Tables::*table = which == 0 ? &Tables::labels : which == 1 ? &Tables::classes : &Tables::headers;
      const char* name = which == 0 ? "csv-labels" : which == 1 ? "csv-classes" : "csv-headers";
      Target t{name, "csv", ".csv", 20, seeds_of(table), nullptr, true};
      t.read = [which, companions](const std::string& path, std::uint64_t) {
        const bool shared_seed = path.find(".shared") != std::string::npos;
        auto files = companions(shared_seed ? "shared" : "builtin");
        files[static_cast<std::size_t>(which)] = path;
        return expect_data_errors(path, {files.begin(), files.end()}, [&] {
          const RsnaLabels labels = read_rsna_labels(files[0], files[1], files[2]);
          for (const RsnaPatient& p : labels.patients)
            if ((p.target == 1) != !p.boxes.empty() || p.patient_id.empty())
              return crash("read, but patient '" + p.patient_id + "' has a Target that contradicts its boxes");
          return read_ok();
        });
      };
      targets.push_back(std::move(t));
    }
    {  // the header table as shipped: gzip-compressed
      std::vector<Seed> seeds;
      seeds.push_back({"builtin", gzip(builtin.headers, fixed / "headers.csv.gz"), {}, false});
      if (shared) seeds.push_back({"shared", gzip(shared->headers, fixed / "shared_headers.csv.gz"), {}, false});
      for (Seed& s : seeds) {
        s.hot = {0, 3, 4, 8, 9};  // gzip header: magic, flags, time, extra flags, OS
        if (s.data.size() >= 8) s.hot.push_back(s.data.size() - 8);  // CRC-32, length
      }
      Target t{"csv-headers-gz", "csv", ".csv.gz", 20, seeds, nullptr, true};
      t.read = [companions](const std::string& path, std::uint64_t) {
        auto files = companions(path.find(".shared") != std::string::npos ? "shared" : "builtin");
        files[2] = path;
        return expect_data_errors(path, {files.begin(), files.end()}, [&] {
          read_rsna_labels(files[0], files[1], files[2]);
          return read_ok();
        });
      };
      targets.push_back(std::move(t));
    }
    {
      std::string crlf;
      for (char c : std::string(kSubmission)) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
      Target t{"csv-submission", "csv", ".csv", 20,
               text_seeds({{"builtin", kSubmission}, {"builtin-crlf-bom", "\xEF\xBB\xBF" + crlf}}), nullptr, true};
      t.read = [](const std::string& path, std::uint64_t) {
        return expect_data_errors(path, {}, [&] {
          const rsna::Submission s = rsna::read_submission(path);
          for (const auto& row : s)
            for (const auto& b : row.boxes)
              if (!std::isfinite(b.score) || !std::isfinite(b.box.w) || b.box.w < 0 || b.box.h < 0)
                return crash("read, but a box of '" + row.patient_id + "' is not finite or has a negative size");
          return read_ok();
        });
      };
      targets.push_back(std::move(t));
    }
    {
      // A split file ([cv] splits) for 12 samples of 5 patients in 3 folds, as `chestlab splits`
      // writes it and as another tool might (other column order, CRLF, a byte-order mark).
      std::vector<SplitSample> samples;
      for (int i = 0; i < 12; ++i)
        samples.push_back({"img-" + std::to_string(i), "patient-" + std::to_string(i % 5), i % 3 == 0 ? 1 : 0});
      const std::vector<int> folds = {0, 1, 2, 2, 1, 0, 1, 2, 2, 1, 0, 1};  // patient i % 5 -> one fold
      const std::string ours = format_split_file(samples, {folds}, SplitMode::KFold);
      std::string theirs = "\xEF\xBB\xBF" "fold,note,id\r\n";
      for (std::size_t i = samples.size(); i-- > 0;)
        theirs += std::to_string(folds[i]) + ",\"a, note\"," + samples[i].id + "\r\n";
      Target t{"csv-splits", "csv", ".csv", 20, text_seeds({{"chestlab", ours}, {"other-tool", theirs}}), nullptr,
               true};
      t.read = [samples](const std::string& path, std::uint64_t) {
        return expect_data_errors(path, {}, [&] {
          const std::vector<int> assignment = read_split_file(path, samples, SplitMode::KFold, 3, 1).at(0);
          split_file_digest(path);
          // Read means checked: every sample in a fold, every patient in one.
          std::map<std::string, int> fold_of_patient;
          for (std::size_t i = 0; i < samples.size(); ++i) {
            if (assignment[i] < 0 || assignment[i] > 2) return crash("read, but a sample has no fold");
            const auto [it, inserted] = fold_of_patient.emplace(samples[i].group, assignment[i]);
            if (!inserted && it->second != assignment[i]) return crash("read, but a patient spans two folds");
          }
          return read_ok();
        });
      };
      targets.push_back(std::move(t));
    }
  }

  if (wanted("toml")) {
    Target file{"toml", "toml", ".toml", 20, experiment_seeds(env), nullptr, true};
    file.read = [](const std::string& path, std::uint64_t) {
      return expect_config_errors([&] {
        const ExperimentConfig c = load_experiment(path, {}, catalog());
        return check_resolved(c, path);
      });
    };
    targets.push_back(std::move(file));
    // `--set section.key=value` overrides of a valid file.
    const fs::path base = env.work_dir / "seeds" / "override_base.toml";
    write_bytes(base, kRichExperiment);
    Target set{"toml-set", "toml", ".txt", 20,
               text_seeds({{"epochs", "train.epochs=5"},
                           {"lr", "optimizer.lr=3e-4"},
                           {"string", "experiment.output=\"out dir/with \\\"quotes\\\" and \\\\ slash\""},
                           {"list", "model.widths=[4, 8, 16, 32]"},
                           {"bool", "train.deterministic=false"},
                           {"new-table", "cv.folds=4"},
                           {"scheduler", "scheduler.gamma=0.25"}}),
               nullptr, true};
    set.read = [base](const std::string& path, std::uint64_t) {
      return expect_config_errors([&] {
        const ExperimentConfig c = load_experiment(base.string(), {read_bytes(path)}, catalog());
        return check_resolved(c, base.string());
      });
    };
    targets.push_back(std::move(set));
  }

  if (wanted("runfile")) {
    const fs::path dir = env.work_dir / "seeds";
    const std::string config = experiment_text(env, "tests/data/tiny.toml");
    write_synthetic_run(dir / "synthetic_run.h5", config, true);
    write_synthetic_run(dir / "synthetic_empty_run.h5", config, false);
    targets.push_back({"runfile", "runfile", ".h5", 20,
                       {runfile_seed("written:two_folds", dir / "synthetic_run.h5"),
                        runfile_seed("written:no_folds", dir / "synthetic_empty_run.h5")},
                       read_runfile_target, true});

    if (!env.chestlab_exe.empty()) {
      // A real run file from a tiny run, and the same with fold 1 marked interrupted (so that
      // --resume reads its resume state and continues it).
      const fs::path out = env.work_dir / "tiny_run";
      fs::remove_all(out);
      const Process p = run_process({env.chestlab_exe, "run", (env.source_dir / "tests/data/tiny.toml").string(),
                                     "--set", "train.epochs=2", "--set", "dataset.count=24", "--quiet", "--output",
                                     out.string()},
                                    env.work_dir / "tiny_run.log", 300);
      if (p.exit_code != 0)
        throw std::runtime_error("fuzz: the tiny run failed (exit " + std::to_string(p.exit_code) + "): " +
                                 last_lines(p.output, 6));
      fs::path run;
      for (const auto& e : fs::recursive_directory_iterator(out))
        if (e.path().extension() == ".h5") run = e.path();
      const fs::path complete = dir / "tiny_complete.h5", interrupted = dir / "tiny_interrupted.h5";
      fs::copy_file(run, complete, fs::copy_options::overwrite_existing);
      fs::copy_file(run, interrupted, fs::copy_options::overwrite_existing);
      RunFile::open(interrupted.string()).transaction([](RunWriter& w) {
        w.set_fold_status(1, FoldStatus::Interrupted);
        w.set_status(RunStatus::Interrupted);
      });
      Target cli{"runfile-cli", "runfile", ".h5", 90,
                 {runfile_seed("tiny:complete", complete), runfile_seed("tiny:interrupted", interrupted)}, nullptr,
                 false};
      cli.seed_checks = static_cast<int>(std::size(kCliCommands));
      cli.read = [env](const std::string& path, std::uint64_t iteration) {
        const std::string command = kCliCommands[iteration % std::size(kCliCommands)];
        const fs::path dir = fs::path(path).parent_path();
        const Process p = run_process(cli_argv(env, command, path, dir), dir / (command + ".log"), 90);
        return cli_outcome(p, command);
      };
      targets.push_back(std::move(cli));

      // predict needs a run whose metric makes boxes: the small RSNA recipe, shrunk to seconds,
      // on a synthetic corpus of the built-in label table's 12 patients.
      const fs::path corpus = env.work_dir / "rsna_corpus", rsna_out = env.work_dir / "rsna_run";
      fs::remove_all(corpus);
      fs::remove_all(rsna_out);
      const Tables tables = builtin_tables();
      write_bytes(dir / "rsna_labels.csv", tables.labels);
      write_bytes(dir / "rsna_classes.csv", tables.classes);
      const Process synth = run_process({env.chestlab_exe, "synth", "rsna", "--labels", (dir / "rsna_labels.csv").string(),
                                         "--class-info", (dir / "rsna_classes.csv").string(), "--seed", "1", "--out",
                                         corpus.string()},
                                        env.work_dir / "rsna_synth.log", 300);
      if (synth.exit_code != 0)
        throw std::runtime_error("fuzz: synth rsna failed: " + last_lines(synth.output, 6));
      const std::string c = corpus.string();
      const Process rsna = run_process(
          {env.chestlab_exe, "run", (env.source_dir / "experiments/rsna_resnet_seg_small.toml").string(), "--set",
           "dataset.images=" + c, "--set", "dataset.labels=" + c + "/stage_2_train_labels.csv", "--set",
           "dataset.class_info=" + c + "/stage_2_detailed_class_info.csv", "--set", "dataset.image_size=32", "--set",
           "train.epochs=1", "--set", "cv.folds=2", "--set", "train.batch_size=4", "--set", "model.channels=4", "--set",
           "model.depth=2", "--set", "model.blocks=1", "--quiet", "--output", rsna_out.string()},
          env.work_dir / "rsna_run.log", 300);
      if (rsna.exit_code != 0)
        throw std::runtime_error("fuzz: the small RSNA run failed: " + last_lines(rsna.output, 6));
      fs::path rsna_run;
      for (const auto& e : fs::recursive_directory_iterator(rsna_out))
        if (e.path().extension() == ".h5") rsna_run = e.path();
      fs::copy_file(rsna_run, dir / "rsna_complete.h5", fs::copy_options::overwrite_existing);
      Target predict{"runfile-predict", "runfile", ".h5", 120, {runfile_seed("rsna:complete", dir / "rsna_complete.h5")},
                     nullptr, false};
      predict.read = [env](const std::string& path, std::uint64_t) {
        const fs::path dir = fs::path(path).parent_path();
        return cli_outcome(run_process(cli_argv(env, "predict", path, dir), dir / "predict.log", 120), "predict");
      };
      targets.push_back(std::move(predict));
    }
  }
  return targets;
}

// ---- running one input ------------------------------------------------------------------

Outcome run_isolated(const Target& target, const std::string& path, std::uint64_t iteration) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("fuzz: pipe failed");
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fuzz: fork failed");
  if (pid == 0) {
    close(fds[0]);
    // A hostile length must end in the reader's own "out of memory" error, not exhaust the
    // machine: 4 GiB of address space is far more than any seed needs. Under AddressSanitizer,
    // whose shadow memory alone reserves terabytes of address space, the same bound comes from
    // ASAN_OPTIONS max_allocation_size_mb (scripts/test-sanitized.sh).
#ifndef __SANITIZE_ADDRESS__
    rlimit limit{4ull << 30, 4ull << 30};
    setrlimit(RLIMIT_AS, &limit);
#endif
    Outcome o;
    try {
      o = target.read(path, iteration);
    } catch (...) {
      o = crash("the target's own code threw");
    }
    const std::string message = std::string(1, static_cast<char>('0' + static_cast<int>(o.verdict))) + o.detail;
    std::size_t written = 0;
    while (written < message.size()) {
      const ssize_t n = write(fds[1], message.data() + written, message.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string message;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(target.timeout_s);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;  // the child closed its end: done or dead
    message.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (timed_out) return {Verdict::Hang, fmt::format("no answer within {} s", target.timeout_s)};
  if (WIFSIGNALED(status))
    return crash(fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status))));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || message.empty())
    return crash(fmt::format("the reader's process ended without an answer (exit {})", WEXITSTATUS(status)));
  Outcome o;
  o.verdict = static_cast<Verdict>(message[0] - '0');
  o.detail = message.substr(1);
  return o;
}

// ---- campaigns --------------------------------------------------------------------------

Counts run_campaign(const Target& target, const Environment& env, std::uint64_t seed, std::uint64_t first,
                    std::uint64_t count, bool check_seeds) {
  Counts c;
  c.target = target.name;
  const fs::path dir = env.work_dir / target.name;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  auto one = [&](const Bytes& data, const std::string& seed_name, const std::string& edits, std::uint64_t iteration,
                 bool must_read) {
    // The mutant's folder is fresh for every input (the CLI writes beside it); the seed's
    // origin is in the file name (the CSV targets choose the companion tables by it).
    const fs::path input_dir = dir / "input";
    fs::remove_all(input_dir);
    fs::create_directories(input_dir);
    const std::string origin = seed_name.rfind("shared", 0) == 0 ? ".shared" : "";
    const fs::path input = input_dir / ("mutant" + origin + target.suffix);
    write_bytes(input, data);
    Outcome o = target.in_process ? run_isolated(target, input.string(), iteration)
                                  : target.read(input.string(), iteration);
    if (must_read && o.verdict == Verdict::Refused)
      o = crash("the unmutated seed was refused: " + o.detail);
    ++c.inputs;
    switch (o.verdict) {
      case Verdict::Read: ++c.read; break;
      case Verdict::Refused: ++c.refused; break;
      case Verdict::Crash: ++c.crashes; break;
      case Verdict::Hang: ++c.hangs; break;
    }
    if (env.verbose)
      std::cout << fmt::format("{} #{} [{}] {}: {} {}\n", target.name, iteration, seed_name, edits,
                               to_string(o.verdict), o.detail);
    if (o.verdict == Verdict::Crash || o.verdict == Verdict::Hang) {
      Failure f{iteration, seed_name, edits, o, ""};
      if (!env.save_dir.empty()) {
        fs::create_directories(env.save_dir);
        const fs::path saved = env.save_dir / fmt::format("{}-seed{}-it{}{}", target.name, seed, iteration, target.suffix);
        write_bytes(saved, data);
        f.saved = saved.string();
      }
      if (c.failures.size() < 50) c.failures.push_back(std::move(f));
    }
  };
  if (check_seeds)
    for (const Seed& s : target.seeds)
      for (int i = 0; i < target.seed_checks; ++i) one(s.data, s.name, "unmutated", static_cast<std::uint64_t>(i), true);
  for (std::uint64_t i = first; i < first + count; ++i) {
    const Mutant m = mutate(target.seeds, seed, target.name, i);
    one(m.data, m.seed_name, m.edits, i, false);
  }
  fs::remove_all(dir / "input");
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return c;
}

std::string format_table(const std::vector<Counts>& all) {
  std::string out = fmt::format("{:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9}\n", "target", "inputs", "read", "refused",
                                "crashes", "hangs", "seconds");
  Counts total;
  for (const Counts& c : all) {
    out += fmt::format("{:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9.1f}\n", c.target, c.inputs, c.read, c.refused,
                       c.crashes, c.hangs, c.seconds);
    total.inputs += c.inputs;
    total.read += c.read;
    total.refused += c.refused;
    total.crashes += c.crashes;
    total.hangs += c.hangs;
    total.seconds += c.seconds;
  }
  if (all.size() > 1)
    out += fmt::format("{:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9.1f}\n", "total", total.inputs, total.read,
                       total.refused, total.crashes, total.hangs, total.seconds);
  return out;
}

std::string format_failures(const Counts& c, std::size_t at_most) {
  std::string out;
  for (std::size_t i = 0; i < c.failures.size() && i < at_most; ++i) {
    const Failure& f = c.failures[i];
    out += fmt::format("{} iteration {} (seed input {}; {}): {}: {}{}\n", c.target, f.iteration, f.seed_name, f.edits,
                       to_string(f.outcome.verdict), f.outcome.detail, f.saved.empty() ? "" : " [saved " + f.saved + "]");
  }
  return out;
}

}  // namespace chestlab::fuzz

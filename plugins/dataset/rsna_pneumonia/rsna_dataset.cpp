#include "rsna_dataset.h"

#include <torch/torch.h>

#include "chestlab/detection/box_tensor.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <stdexcept>

#include "box_mask.h"

namespace fs = std::filesystem;

namespace chestlab::rsna_pneumonia {

namespace {

// Without a class table the only label is Target.
const std::vector<std::string>& target_class_names() {
  static const std::vector<std::string> names = {"No Lung Opacity", "Lung Opacity"};
  return names;
}

// The label reader reports each problem once per read; a process that opens the same tables
// twice (validate, then run; or `chestlab cache`) still prints each warning once.
void print_warnings_once(const std::vector<std::string>& warnings) {
  static std::mutex mutex;
  static std::set<std::string> printed;
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& w : warnings)
    if (printed.insert(w).second) std::cerr << "warning: rsna_pneumonia: " << w << "\n";
}

// CV_32FC1 or CV_8UC1 rows x cols -> float32 [1, rows, cols] (copied).
torch::Tensor to_tensor(const cv::Mat& m) {
  cv::Mat f;
  if (m.type() == CV_32FC1 && m.isContinuous()) f = m;
  else m.convertTo(f, CV_32F);
  return torch::from_blob(f.data, {1, f.rows, f.cols}, torch::kFloat32).clone();
}

// The header fields a sample carries, under their DICOM keywords.
std::map<std::string, std::string> sample_meta(const RsnaPatient& p) {
  std::map<std::string, std::string> meta;
  for (const char* key : {rsna_meta::kAge, rsna_meta::kSex, rsna_meta::kViewPosition, rsna_meta::kPixelSpacing}) {
    auto it = p.meta.find(key);
    if (it != p.meta.end() && !it->second.empty()) meta[key] = it->second;
  }
  return meta;
}

void validate_preprocess(const rsna::RsnaPreprocess& preprocess) {
  try {
    preprocess.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("rsna_pneumonia: ") + e.what());
  }
}

// The patient ids of the `<id>.dcm` files of `dir` (not recursive), sorted.
std::vector<std::string> dicom_patient_ids(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir, "not a folder");
  std::vector<std::string> ids;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".dcm" && !entry.is_directory()) ids.push_back(entry.path().stem().string());
  }
  if (ec) throw DataError(dir, "cannot list the folder: " + ec.message());
  if (ids.empty()) throw DataError(dir, "no <patientId>.dcm file in this folder");
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

RsnaDataset::RsnaDataset(RsnaDatasetOptions options) : options_(std::move(options)) {
  validate_preprocess(options_.preprocess);
  RsnaLabels labels = read_rsna_labels(options_.labels_csv, options_.class_info_csv, options_.headers_csv);
  print_warnings_once(labels.warnings);
  patients_ = std::move(labels.patients);
  if (options_.limit > 0 && patients_.size() > options_.limit) patients_.resize(options_.limit);
  has_classes_ = !options_.class_info_csv.empty();
  if (!options_.cache_path.empty())
    cache_ = std::make_unique<rsna::RsnaImageCache>(options_.cache_path, options_.preprocess);
}

RsnaDataset::RsnaDataset(RsnaDatasetOptions options, std::vector<RsnaPatient> patients)
    : options_(std::move(options)), patients_(std::move(patients)) {
  validate_preprocess(options_.preprocess);
}

std::shared_ptr<RsnaDataset> RsnaDataset::folder(RsnaDatasetOptions options) {
  std::vector<RsnaPatient> patients;
  for (auto& id : dicom_patient_ids(options.images_dir)) {
    patients.emplace_back();
    patients.back().patient_id = std::move(id);
  }
  // The cache is keyed by patientId, and another folder may hold another image under the
  // same id: a folder is always read from its files.
  options.cache_path.clear();
  return std::shared_ptr<RsnaDataset>(new RsnaDataset(std::move(options), std::move(patients)));
}

const RsnaPatient& RsnaDataset::patient(std::size_t index) const {
  if (index >= patients_.size())
    throw std::out_of_range("rsna_pneumonia: index " + std::to_string(index) + " is out of range (size " +
                            std::to_string(patients_.size()) + ")");
  return patients_[index];
}

// The 3-class index when a class table was given (the reader fills gaps from Target and
// warns); Target otherwise.
std::int64_t RsnaDataset::label_of(const RsnaPatient& p) const {
  if (has_classes_ && p.class_index != kRsnaUnknownClass) return p.class_index;
  return p.target;
}

std::vector<std::string> RsnaDataset::class_names() const {
  return has_classes_ ? rsna_class_names() : target_class_names();
}

SampleInfo RsnaDataset::info(std::size_t index) const {
  const RsnaPatient& p = patient(index);
  SampleInfo info;
  info.id = p.patient_id;
  info.group = p.patient_id;  // RSNA has one image per patient
  info.label = label_of(p);
  return info;
}

std::string RsnaDataset::image_path(std::size_t index) const {
  return (fs::path(options_.images_dir) / (patient(index).patient_id + ".dcm")).string();
}

rsna::PreparedImage RsnaDataset::prepared_image(const RsnaPatient& p) const {
  const std::string path = (fs::path(options_.images_dir) / (p.patient_id + ".dcm")).string();
  auto read = [&] { return rsna::preprocess_dicom(path, options_.preprocess); };
  return cache_ ? cache_->get_or_make(p.patient_id, read) : read();
}

Sample RsnaDataset::get(std::size_t index) const {
  const RsnaPatient& p = patient(index);
  const rsna::PreparedImage prepared = prepared_image(p);
  const int size = options_.preprocess.image_size;

  Sample s;
  s.image = to_tensor(rsna::unit_from_u16(prepared.pixels));
  // Drawn at the source resolution, where the boxes are given, then resized like the image.
  s.mask = p.boxes.empty()
               ? torch::zeros({1, size, size}, torch::kFloat32)
               : to_tensor(resize_binary_mask(
                     boxes_to_mask(p.boxes, prepared.original_rows, prepared.original_cols), size, size));
  s.boxes = boxes_to_tensor(scale_boxes(p.boxes, static_cast<double>(size) / prepared.original_cols,
                                     static_cast<double>(size) / prepared.original_rows));
  s.label = label_of(p);
  s.group = p.patient_id;
  s.id = p.patient_id;
  s.original_height = prepared.original_rows;
  s.original_width = prepared.original_cols;
  s.meta = sample_meta(p);
  return s;
}

}  // namespace chestlab::rsna_pneumonia

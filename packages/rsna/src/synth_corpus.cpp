#include "chestlab/rsna/synth_corpus.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "chestlab/errors.h"
#include "chestlab/hash.h"

namespace fs = std::filesystem;

namespace chestlab::rsna {

namespace {

constexpr const char* kLabelsName = "stage_2_train_labels.csv";
constexpr const char* kClassInfoName = "stage_2_detailed_class_info.csv";
constexpr std::chrono::milliseconds kReportEvery{500};

std::string meta_or_empty(const RsnaPatient& patient, const char* key) {
  auto it = patient.meta.find(key);
  return it == patient.meta.end() ? std::string() : it->second;
}

// The headers table writes one value ("0.168"); a DICOM-style pair ("0.168\0.168") is
// accepted too. Anything unparsable leaves Pixel Spacing out rather than inventing one.
double pixel_spacing_of(const RsnaPatient& patient) {
  const std::string text = meta_or_empty(patient, rsna_meta::kPixelSpacing);
  if (text.empty()) return 0.0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(value > 0.0)) return 0.0;
  return value;
}

DicomWriteInfo dicom_info_for(const RsnaPatient& patient, int jpeg_quality) {
  DicomWriteInfo info;
  info.patient_id = patient.patient_id;
  info.patient_sex = meta_or_empty(patient, rsna_meta::kSex);
  info.patient_age = meta_or_empty(patient, rsna_meta::kAge);
  info.view_position = meta_or_empty(patient, rsna_meta::kViewPosition);
  info.pixel_spacing_mm = pixel_spacing_of(patient);
  info.quality = jpeg_quality;
  return info;
}

// The RSNA class indices and the generator's labels are the same three classes in the same
// order; an unknown class lets the generator choose between its two opacity-free kinds.
std::optional<int> generator_label(const RsnaPatient& patient) {
  if (patient.target == 1) return synth::kLungOpacity;
  if (patient.class_index == kRsnaNormal) return synth::kNormal;
  if (patient.class_index == kRsnaNoOpacityNotNormal) return synth::kNotNormalNoOpacity;
  return std::nullopt;
}

std::vector<RsnaPatient> selected_patients(RsnaLabels& labels, std::size_t limit) {
  std::vector<RsnaPatient> patients = std::move(labels.patients);
  if (limit > 0 && patients.size() > limit) patients.resize(limit);
  return patients;
}

void check_options(const SynthCorpusOptions& o) {
  if (o.labels_csv.empty()) throw std::invalid_argument("synth rsna: the labels table (--labels) is required");
  if (o.out_dir.empty()) throw std::invalid_argument("synth rsna: the output folder (--out) is required");
  if (o.threads < 1) throw std::invalid_argument(fmt::format("synth rsna: threads must be >= 1, got {}", o.threads));
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100)
    throw std::invalid_argument(fmt::format("synth rsna: JPEG quality must be in 1..100, got {}", o.jpeg_quality));
}

void make_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw DataError(dir, "cannot create the output folder: " + ec.message());
}

// Writes through a temporary name and renames, so an interrupted run never leaves a
// truncated .dcm that looks complete.
std::uintmax_t write_patient_file(const fs::path& dir, const RsnaPatient& patient, const SynthPatientImage& image) {
  const fs::path final_path = dir / (patient.patient_id + ".dcm");
  const fs::path temp_path = dir / ("." + patient.patient_id + ".dcm.tmp");
  write_dicom_jpeg_baseline(temp_path.string(), image.gray8, image.dicom);
  std::error_code ec;
  fs::rename(temp_path, final_path, ec);
  if (ec) throw DataError(final_path.string(), "cannot rename the written file into place: " + ec.message());
  return fs::file_size(final_path);
}

// Patients are handed out one at a time, so memory stays at one image per thread whatever
// the corpus size; every file depends only on its patient, so the order threads take them
// in does not change a byte.
class CorpusWriter {
 public:
  CorpusWriter(const SynthCorpusOptions& options, std::vector<RsnaPatient>& patients)
      : options_(options),
        patients_(patients),
        thread_count_(std::max(1, std::min<int>(options.threads, static_cast<int>(patients.size())))) {}

  void run(const std::function<void(const SynthProgress&)>& progress) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < thread_count_; ++t) threads.emplace_back([this] { work(); });
    report_until_done(progress, start);
    for (auto& t : threads) t.join();
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (error_) std::rethrow_exception(error_);
    if (progress) progress(snapshot());
  }

  std::uintmax_t bytes() const { return bytes_; }
  double seconds() const { return seconds_; }

 private:
  void work() {
    while (!stop_) {
      const std::size_t i = next_++;
      if (i >= patients_.size()) break;
      try {
        write_one(patients_[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        stop_ = true;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      ++done_;
      changed_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++threads_finished_;
    changed_.notify_all();
  }

  void write_one(RsnaPatient& patient) {
    SynthPatientImage image = synth_patient_image(patient, options_.seed, options_.jpeg_quality);
    const std::uintmax_t size = write_patient_file(options_.out_dir, patient, image);
    // Without a class table the generator chose the class; the written table says which.
    if (patient.class_index == kRsnaUnknownClass) {
      patient.class_index = image.chest.label;
      patient.class_name = rsna_class_names().at(static_cast<std::size_t>(image.chest.label));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    bytes_ += size;
  }

  void report_until_done(const std::function<void(const SynthProgress&)>& progress,
                         std::chrono::steady_clock::time_point start) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto next_report = start + kReportEvery;
    while (threads_finished_ < thread_count_) {
      changed_.wait_until(lock, next_report);
      if (!progress || threads_finished_ >= thread_count_ || std::chrono::steady_clock::now() < next_report)
        continue;
      next_report += kReportEvery;
      SynthProgress p{done_, patients_.size(),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), bytes_};
      lock.unlock();
      progress(p);
      lock.lock();
    }
  }

  SynthProgress snapshot() const { return {done_, patients_.size(), seconds_, bytes_}; }

  const SynthCorpusOptions& options_;
  std::vector<RsnaPatient>& patients_;
  const int thread_count_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t done_ = 0;
  int threads_finished_ = 0;
  std::uintmax_t bytes_ = 0;
  double seconds_ = 0;
  std::exception_ptr error_;
};

}  // namespace

SynthPatientImage synth_patient_image(const RsnaPatient& patient, std::uint64_t seed, int jpeg_quality) {
  synth::ChestOptions chest_options;
  chest_options.size = kRsnaImageSize;
  // The image index is a hash of the patient id, so a patient looks the same in every
  // corpus made with this seed, whatever its row in the table or the --limit.
  const std::uint64_t index = fnv1a64(patient.patient_id);
  SynthPatientImage out;
  out.chest = synth::generate_chest_with_boxes(chest_options, seed, index, patient.boxes, generator_label(patient));
  out.gray8 = out.chest.image;
  out.dicom = dicom_info_for(patient, jpeg_quality);
  return out;
}

SynthCorpusSummary write_synth_corpus(const SynthCorpusOptions& options,
                                      const std::function<void(const SynthProgress&)>& progress) {
  check_options(options);
  RsnaLabels labels = read_rsna_labels(options.labels_csv, options.class_info_csv, options.headers_csv);
  SynthCorpusSummary summary;
  summary.warnings = labels.warnings;
  std::vector<RsnaPatient> patients = selected_patients(labels, options.limit);
  make_output_dir(options.out_dir);

  CorpusWriter writer(options, patients);
  writer.run(progress);

  const fs::path dir(options.out_dir);
  summary.labels_csv = (dir / kLabelsName).string();
  summary.class_info_csv = (dir / kClassInfoName).string();
  write_rsna_labels(summary.labels_csv, patients);
  write_rsna_class_info(summary.class_info_csv, patients);
  summary.patients = patients.size();
  for (const auto& p : patients) summary.boxes += p.boxes.size();
  summary.seconds = writer.seconds();
  summary.dicom_bytes = writer.bytes();
  return summary;
}

}  // namespace chestlab::rsna

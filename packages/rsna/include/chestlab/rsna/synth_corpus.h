// A synthetic corpus in the RSNA Pneumonia Detection Challenge's own format: one
// `<patientId>.dcm` per patient of a labels table (1024 x 1024, 8-bit MONOCHROME2, JPEG
// Baseline, like the challenge files) whose opacities lie inside that patient's labelled
// boxes, plus the label tables restricted to the patients written. The dataset plugin
// `rsna_pneumonia` reads it exactly as it reads the real images, so the whole pipeline runs
// without the 3.7 GB of real DICOM. Torch-free (the rsna package); `chestlab synth rsna` is
// the command-line front end.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "chestlab/imaging/dicom.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/synth/chest.h"

namespace chestlab::rsna {

// Side of the challenge's images; the labels' boxes are in pixels of this size.
constexpr int kRsnaImageSize = 1024;

struct SynthCorpusOptions {
  std::string labels_csv;      // stage_2_train_labels.csv (required)
  std::string class_info_csv;  // stage_2_detailed_class_info.csv, or ""
  std::string headers_csv;     // DICOM headers table (.csv or .csv.gz), or ""
  std::string out_dir;         // created if missing; existing files of the same names are replaced
  std::size_t limit = 0;       // the first N patients of the labels table; 0 = all
  std::uint64_t seed = 0;
  int threads = 2;             // images are independent; the output does not depend on this
  int jpeg_quality = 95;       // IJG quality factor of the JPEG Baseline pixel data
};

struct SynthProgress {
  std::size_t done = 0;
  std::size_t total = 0;
  double seconds = 0;
  std::uintmax_t bytes = 0;  // DICOM bytes written so far
};

struct SynthCorpusSummary {
  std::size_t patients = 0;
  std::size_t boxes = 0;
  double seconds = 0;
  std::uintmax_t dicom_bytes = 0;  // the .dcm files only
  std::string labels_csv;          // the tables written into out_dir
  std::string class_info_csv;
  std::vector<std::string> warnings;  // the label reader's, to print once
};

// What one patient's file holds. The pixels depend only on (seed, patient id, boxes,
// class): never on the patient's position in the table, `limit` or `threads`.
struct SynthPatientImage {
  cv::Mat gray8;       // CV_8UC1 kRsnaImageSize x kRsnaImageSize
  synth::ChestImage chest;  // the generator's output (mask, drawn boxes, lung mask, label)
  DicomWriteInfo dicom;
};

// Draws one patient: opacities inside its boxes (none for Target 0); the class "No Lung
// Opacity / Not Normal" gets the generator's diffuse non-opacity findings, "Normal" none; a
// patient without a class (no class table) gets the generator's own choice between the two.
// Header fields (sex, age, view position, pixel spacing) come from patient.meta, i.e. the
// headers table, when present. Throws std::invalid_argument for a box outside the image.
SynthPatientImage synth_patient_image(const RsnaPatient& patient, std::uint64_t seed,
                                      int jpeg_quality = 95);

// Writes the corpus. `progress`, when given, is called from the calling thread about
// twice a second and once at the end. Throws DataError for unreadable label tables or an
// unwritable output folder, std::invalid_argument for bad options.
SynthCorpusSummary write_synth_corpus(const SynthCorpusOptions& options,
                                      const std::function<void(const SynthProgress&)>& progress = {});

}  // namespace chestlab::rsna

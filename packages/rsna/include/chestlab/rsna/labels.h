// The label tables of the RSNA Pneumonia Detection Challenge (stage 2 train), read into one
// record per patient, and written back in the same formats. Torch-free.
//
//   stage_2_train_labels.csv         patientId,x,y,width,height,Target -- one row per box; a
//                                    negative patient has one row with empty box fields, Target 0
//   stage_2_detailed_class_info.csv  patientId,class -- one row per label row (duplicates)
//   kaggle_stage_2_train_images_dicom_headers.csv.gz
//                                    DICOM header fields per image (gzip, or plain CSV)
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "chestlab/box.h"

namespace chestlab {

// Class indices of the detailed class table (ordered from "nothing" to "opacity").
enum RsnaClass : int {
  kRsnaUnknownClass = -1,  // no class table was given and Target is 0
  kRsnaNormal = 0,
  kRsnaNoOpacityNotNormal = 1,
  kRsnaLungOpacity = 2,
};

// {"Normal", "No Lung Opacity / Not Normal", "Lung Opacity"}, indexed by RsnaClass.
const std::vector<std::string>& rsna_class_names();
// Index of a class name as the table spells it, or kRsnaUnknownClass.
int rsna_class_index(const std::string& name);

// Keys of RsnaPatient::meta that the DICOM header table provides; every other named column
// of that table is kept too, under its header name (BodyPartExamined, Modality, ...).
namespace rsna_meta {
inline constexpr const char* kAge = "PatientAge";
inline constexpr const char* kSex = "PatientSex";
inline constexpr const char* kViewPosition = "ViewPosition";
inline constexpr const char* kPixelSpacing = "PixelSpacing";
}  // namespace rsna_meta

struct RsnaPatient {
  std::string patient_id;
  int target = 0;                  // 1 when the patient has at least one opacity box
  std::vector<Box> boxes;          // in file order; empty when target == 0
  std::string class_name;          // "" when class_index == kRsnaUnknownClass
  int class_index = kRsnaUnknownClass;
  std::map<std::string, std::string> meta;  // DICOM header fields, as text
};

struct RsnaLabels {
  std::vector<RsnaPatient> patients;  // in order of first appearance in the labels file
  // Problems the reader worked around (e.g. a patient missing from the class table), for the
  // caller to print. Each problem is reported once, however many rows it touches.
  std::vector<std::string> warnings;

  // The patient with this id, or nullptr, through an index built by read_rsna_labels() and
  // reindex(). Call reindex() after changing `patients`; until then, if only their number
  // changed, find() notices and scans (slow but right).
  const RsnaPatient* find(const std::string& patient_id) const;
  void reindex();

 private:
  std::unordered_map<std::string, std::size_t> index_;
};

// Reads the labels table and, when their paths are not empty, the class table and the DICOM
// header table (gzip-compressed or plain). Class of a patient missing from the class table:
// Target 1 -> "Lung Opacity" (certain). Target 0 -> "No Lung Opacity / Not Normal", the more
// frequent of the two negative classes in the stage 2 data (11,821 vs 8,851 patients), so the
// most likely guess; either way a warning names the patient. Without a class table, Target 1
// patients are "Lung Opacity" and Target 0 patients kRsnaUnknownClass, without warnings.
// Throws DataError naming the file and the 1-based line of any malformed row: wrong field
// count, missing header column, non-numeric or non-positive box field, Target not 0/1, a box
// on a Target 0 row, a patient whose rows disagree on Target, an unknown class name, a class
// that contradicts Target, conflicting class rows.
RsnaLabels read_rsna_labels(const std::string& labels_csv, const std::string& class_info_csv,
                            const std::string& headers_csv_gz);

// Writes stage_2_train_labels.csv (one row per box, one empty-box row per negative patient;
// coordinates as the original writes them, e.g. 264.0). Throws std::invalid_argument for a
// patient whose target and boxes disagree, DataError when the file cannot be written.
void write_rsna_labels(const std::string& path, const std::vector<RsnaPatient>& patients);

// Writes stage_2_detailed_class_info.csv with one row per label row, as the original (so it
// repeats a multi-box patient). Throws std::invalid_argument for a patient without a class.
void write_rsna_class_info(const std::string& path, const std::vector<RsnaPatient>& patients);

}  // namespace chestlab

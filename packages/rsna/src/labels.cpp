#include "chestlab/rsna/labels.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "chestlab/errors.h"

namespace chestlab {

namespace {

// How many patients a warning names before it only counts the rest.
constexpr std::size_t kNamedInWarning = 10;

// ---- reading lines and CSV fields ---------------------------------------------------------

gzFile open_for_reading(const std::string& path) {
  errno = 0;  // so that a failure without a system error is not blamed on an old one
  return gzopen(path.c_str(), "rb");
}

// Lines of a text file through zlib, which reads gzip-compressed and plain files alike.
// Counts lines 1-based, as an editor shows them, and strips the line ending (\n or \r\n).
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), file_(open_for_reading(path)) {
    if (!file_)
      throw DataError(path, fmt::format("cannot open ({})", errno ? std::strerror(errno)
                                                                  : "out of memory"));
    gzbuffer(file_, 1u << 17);
  }
  ~LineReader() { gzclose(file_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // False at the end of the file; throws DataError on corrupt or truncated gzip data.
  bool next(std::string& line) {
    line.clear();
    char chunk[8192];
    bool read_any = false;
    while (gzgets(file_, chunk, sizeof chunk)) {
      read_any = true;
      line += chunk;
      if (line.back() == '\n') break;
    }
    if (!read_any) {
      throw_if_failed();
      return false;
    }
    ++line_number_;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line_number_ == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    return true;
  }

  std::size_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(path_, fmt::format("line {}: {}", line_number_, what));
  }

 private:
  void throw_if_failed() const {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    if (code != Z_OK && code != Z_STREAM_END)
      throw DataError(path_, fmt::format("after line {}: cannot read: {}", line_number_,
                                         message ? message : "zlib error"));
  }

  std::string path_;
  gzFile file_;
  std::size_t line_number_ = 0;
};

// Splits one CSV record (RFC 4180): fields separated by commas, a field may be quoted, and a
// quote inside a quoted field is doubled. Returns false for an unterminated quote.
bool split_csv(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return !quoted;
}

// Reads the next non-empty record into `fields`, checking its field count against the
// header. False at the end of the file.
bool next_record(LineReader& reader, std::size_t expected_fields, std::string& line,
                 std::vector<std::string>& fields) {
  while (reader.next(line)) {
    if (line.empty()) continue;  // blank lines (e.g. at the end) carry no record
    if (!split_csv(line, fields)) reader.fail("unterminated quoted field");
    if (fields.size() != expected_fields)
      reader.fail(fmt::format("expected {} fields, found {}", expected_fields, fields.size()));
    return true;
  }
  return false;
}

// Column positions of a table, from its header line.
class Columns {
 public:
  // Reads the header line; fails (line 1) when the file is empty or lacks a required column.
  Columns(LineReader& reader, const std::vector<std::string>& required) {
    std::string line;
    if (!reader.next(line)) throw DataError(reader.path(), "line 1: empty file, expected a header");
    if (!split_csv(line, names_)) reader.fail("unterminated quoted field in the header");
    for (const std::string& name : required)
      if (find(name) < 0)
        reader.fail(fmt::format("missing column '{}' (the header has: {}; needs: {})", name,
                                fmt::join(names_, ","), fmt::join(required, ",")));
  }

  int find(const std::string& name) const {
    auto it = std::find(names_.begin(), names_.end(), name);
    return it == names_.end() ? -1 : static_cast<int>(it - names_.begin());
  }
  std::size_t at(const std::string& name) const { return static_cast<std::size_t>(find(name)); }
  std::size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

std::string name_some(const std::vector<std::string>& ids) {
  const std::size_t shown = std::min(ids.size(), kNamedInWarning);
  std::string text = fmt::format("{}", fmt::join(ids.begin(), ids.begin() + shown, ", "));
  if (ids.size() > shown) text += fmt::format(" and {} more", ids.size() - shown);
  return text;
}

// ---- stage_2_train_labels.csv -------------------------------------------------------------

// Position of each patient in RsnaLabels::patients, while the tables are read.
using PatientIndex = std::unordered_map<std::string, std::size_t>;

RsnaPatient* find_patient(RsnaLabels& labels, const PatientIndex& index, const std::string& id) {
  auto it = index.find(id);
  return it == index.end() ? nullptr : &labels.patients[it->second];
}

const std::vector<std::string> kLabelColumns = {"patientId", "x", "y", "width", "height",
                                                "Target"};

int parse_target(const LineReader& reader, const std::string& text) {
  if (text == "0") return 0;
  if (text == "1") return 1;
  reader.fail(fmt::format("Target is '{}', expected 0 or 1", text));
}

double parse_coordinate(const LineReader& reader, const std::string& column,
                        const std::string& text) {
  double value = 0.0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end || !std::isfinite(value))
    reader.fail(fmt::format("{} is '{}', expected a number", column, text));
  return value;
}

// The box of a row, or nullopt for the empty box fields of a negative row.
std::optional<Box> parse_box(const LineReader& reader, const Columns& columns,
                             const std::vector<std::string>& fields, int target) {
  const char* names[] = {"x", "y", "width", "height"};
  std::size_t empty = 0;
  for (const char* name : names) empty += fields[columns.at(name)].empty();
  if (empty == 4) {
    if (target == 1) reader.fail("Target is 1 but the box fields are empty");
    return std::nullopt;
  }
  if (target == 0) reader.fail("a box on a Target 0 row (a negative row has empty box fields)");
  if (empty != 0) reader.fail("some box fields are empty, expected all four or none");
  double v[4];
  for (int i = 0; i < 4; ++i) v[i] = parse_coordinate(reader, names[i], fields[columns.at(names[i])]);
  if (v[2] <= 0.0 || v[3] <= 0.0)
    reader.fail(fmt::format("box width and height must be positive, found {} x {}", v[2], v[3]));
  return Box{v[0], v[1], v[2], v[3]};
}

PatientIndex read_labels_table(const std::string& path, RsnaLabels& labels) {
  LineReader reader(path);
  const Columns columns(reader, kLabelColumns);
  PatientIndex index;
  std::string line;
  std::vector<std::string> fields;
  while (next_record(reader, columns.size(), line, fields)) {
    const std::string& id = fields[columns.at("patientId")];
    if (id.empty()) reader.fail("empty patientId");
    const int target = parse_target(reader, fields[columns.at("Target")]);
    const std::optional<Box> box = parse_box(reader, columns, fields, target);
    auto [it, is_new] = index.emplace(id, labels.patients.size());
    if (is_new) {
      RsnaPatient patient;
      patient.patient_id = id;
      patient.target = target;
      labels.patients.push_back(std::move(patient));
    }
    RsnaPatient& patient = labels.patients[it->second];
    if (patient.target != target)
      reader.fail(fmt::format("patient {} has Target {} here but Target {} on an earlier row", id,
                              target, patient.target));
    if (box) patient.boxes.push_back(*box);
  }
  return index;
}

// ---- stage_2_detailed_class_info.csv ------------------------------------------------------

void check_class_matches_target(const LineReader& reader, const RsnaPatient& patient,
                                int class_index) {
  const bool opacity = class_index == kRsnaLungOpacity;
  if (opacity != (patient.target == 1))
    reader.fail(fmt::format("patient {} has class '{}' but Target {} in the labels",
                            patient.patient_id, rsna_class_names()[class_index], patient.target));
}

void set_class(RsnaPatient& patient, int class_index) {
  patient.class_index = class_index;
  patient.class_name = class_index == kRsnaUnknownClass ? "" : rsna_class_names()[class_index];
}

void read_class_table(const std::string& path, const PatientIndex& index, RsnaLabels& labels) {
  LineReader reader(path);
  const Columns columns(reader, {"patientId", "class"});
  std::unordered_map<std::string, std::size_t> first_line;  // of each patient's class
  std::vector<std::string> not_in_labels;
  std::string line;
  std::vector<std::string> fields;
  while (next_record(reader, columns.size(), line, fields)) {
    const std::string& id = fields[columns.at("patientId")];
    const std::string& name = fields[columns.at("class")];
    const int class_index = rsna_class_index(name);
    if (class_index == kRsnaUnknownClass)
      reader.fail(fmt::format("unknown class '{}' (allowed: {})", name,
                              fmt::join(rsna_class_names(), ", ")));
    RsnaPatient* found = find_patient(labels, index, id);
    if (!found) {
      if (first_line.emplace(id, reader.line_number()).second) not_in_labels.push_back(id);
      continue;
    }
    RsnaPatient& patient = *found;
    auto [seen, is_first] = first_line.emplace(id, reader.line_number());
    if (!is_first && patient.class_index != class_index)
      reader.fail(fmt::format("patient {} has class '{}' here but '{}' on line {}", id, name,
                              patient.class_name, seen->second));
    check_class_matches_target(reader, patient, class_index);
    set_class(patient, class_index);
  }
  if (!not_in_labels.empty())
    labels.warnings.push_back(fmt::format("{}: ignored the class of {} patient(s) absent from the "
                                          "labels table: {}",
                                          path, not_in_labels.size(), name_some(not_in_labels)));
}

// Class of a patient the class table does not list (see the header for the choice).
int derived_class(const RsnaPatient& patient) {
  return patient.target == 1 ? kRsnaLungOpacity : kRsnaNoOpacityNotNormal;
}

void derive_missing_classes(const std::string& class_info_csv, RsnaLabels& labels) {
  std::vector<std::string> missing;
  for (RsnaPatient& patient : labels.patients) {
    if (patient.class_index != kRsnaUnknownClass) continue;
    set_class(patient, derived_class(patient));
    missing.push_back(patient.patient_id);
    if (missing.size() <= kNamedInWarning)
      labels.warnings.push_back(fmt::format(
          "{}: no class for patient {}; using '{}' derived from its Target {}", class_info_csv,
          patient.patient_id, patient.class_name, patient.target));
  }
  if (missing.size() > kNamedInWarning)
    labels.warnings.push_back(fmt::format("{}: {} patients in all have no class (derived from "
                                          "Target as above)",
                                          class_info_csv, missing.size()));
}

void classes_from_target_only(RsnaLabels& labels) {
  for (RsnaPatient& patient : labels.patients)
    set_class(patient, patient.target == 1 ? kRsnaLungOpacity : kRsnaUnknownClass);
}

// ---- DICOM header table -------------------------------------------------------------------

const char* const kHeaderIdColumn = "PatientID";

void read_header_table(const std::string& path, const PatientIndex& index, RsnaLabels& labels) {
  LineReader reader(path);
  const Columns columns(reader, {kHeaderIdColumn, rsna_meta::kAge, rsna_meta::kSex,
                                 rsna_meta::kViewPosition, rsna_meta::kPixelSpacing});
  // Every named column but the id (the first column of the Kaggle file is an unnamed index).
  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (!columns.names()[i].empty() && columns.names()[i] != kHeaderIdColumn) kept.push_back(i);

  const std::size_t id_column = columns.at(kHeaderIdColumn);
  std::string line;
  std::vector<std::string> fields;
  while (next_record(reader, columns.size(), line, fields)) {
    RsnaPatient* found = find_patient(labels, index, fields[id_column]);
    if (!found || !found->meta.empty()) continue;  // another subset's image, or a repeat
    for (std::size_t i : kept) found->meta.emplace(columns.names()[i], std::move(fields[i]));
  }

  std::vector<std::string> without;
  for (const RsnaPatient& patient : labels.patients)
    if (patient.meta.empty()) without.push_back(patient.patient_id);
  if (!without.empty())
    labels.warnings.push_back(fmt::format("{}: no DICOM header row for {} patient(s): {}", path,
                                          without.size(), name_some(without)));
}

// ---- writing ------------------------------------------------------------------------------

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

// Shortest text that reads back to the same double, with ".0" on integers as the original
// file writes them (264.0).
std::string coordinate_text(double v) {
  if (!std::isfinite(v)) throw std::invalid_argument(fmt::format("box coordinate {} is not finite", v));
  std::string text = fmt::format("{}", v);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

void check_writable(const RsnaPatient& patient) {
  if (patient.patient_id.empty()) throw std::invalid_argument("RSNA patient with an empty id");
  const bool consistent = (patient.target == 0 && patient.boxes.empty()) ||
                          (patient.target == 1 && !patient.boxes.empty());
  if (!consistent)
    throw std::invalid_argument(fmt::format(
        "patient {}: Target {} with {} box(es) cannot be written (Target 1 needs boxes, "
        "Target 0 none)",
        patient.patient_id, patient.target, patient.boxes.size()));
}

std::ofstream open_for_writing(const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw DataError(path, fmt::format("cannot open for writing ({})", std::strerror(errno)));
  return out;
}

void finish_writing(std::ofstream& out, const std::string& path) {
  out.close();
  if (!out) throw DataError(path, "write failed (disk full?)");
}

std::string class_name_of(const RsnaPatient& patient) {
  if (!patient.class_name.empty()) return patient.class_name;
  const auto& names = rsna_class_names();
  if (patient.class_index >= 0 && patient.class_index < static_cast<int>(names.size()))
    return names[patient.class_index];
  throw std::invalid_argument(
      fmt::format("patient {} has no class to write", patient.patient_id));
}

}  // namespace

// ---- public API ---------------------------------------------------------------------------

const std::vector<std::string>& rsna_class_names() {
  static const std::vector<std::string> names = {"Normal", "No Lung Opacity / Not Normal",
                                                 "Lung Opacity"};
  return names;
}

int rsna_class_index(const std::string& name) {
  const auto& names = rsna_class_names();
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? kRsnaUnknownClass : static_cast<int>(it - names.begin());
}

const RsnaPatient* RsnaLabels::find(const std::string& patient_id) const {
  if (index_.size() == patients.size()) {
    auto it = index_.find(patient_id);
    if (it == index_.end()) return nullptr;
    if (patients[it->second].patient_id == patient_id) return &patients[it->second];
  }
  // Patients were added or removed since reindex(): a scan is slow but right.
  for (const RsnaPatient& patient : patients)
    if (patient.patient_id == patient_id) return &patient;
  return nullptr;
}

void RsnaLabels::reindex() {
  index_.clear();
  index_.reserve(patients.size());
  for (std::size_t i = 0; i < patients.size(); ++i) index_.emplace(patients[i].patient_id, i);
}

RsnaLabels read_rsna_labels(const std::string& labels_csv, const std::string& class_info_csv,
                            const std::string& headers_csv_gz) {
  RsnaLabels labels;
  const PatientIndex index = read_labels_table(labels_csv, labels);
  if (class_info_csv.empty()) {
    classes_from_target_only(labels);
  } else {
    read_class_table(class_info_csv, index, labels);
    derive_missing_classes(class_info_csv, labels);
  }
  if (!headers_csv_gz.empty()) read_header_table(headers_csv_gz, index, labels);
  labels.reindex();
  return labels;
}

void write_rsna_labels(const std::string& path, const std::vector<RsnaPatient>& patients) {
  for (const RsnaPatient& patient : patients) check_writable(patient);
  std::ofstream out = open_for_writing(path);
  out << "patientId,x,y,width,height,Target\n";
  for (const RsnaPatient& patient : patients) {
    const std::string id = csv_field(patient.patient_id);
    if (patient.boxes.empty()) out << id << ",,,,,0\n";
    for (const Box& b : patient.boxes)
      out << id << ',' << coordinate_text(b.x) << ',' << coordinate_text(b.y) << ','
          << coordinate_text(b.w) << ',' << coordinate_text(b.h) << ",1\n";
  }
  finish_writing(out, path);
}

void write_rsna_class_info(const std::string& path, const std::vector<RsnaPatient>& patients) {
  std::vector<std::string> names;
  names.reserve(patients.size());
  for (const RsnaPatient& patient : patients) names.push_back(csv_field(class_name_of(patient)));
  std::ofstream out = open_for_writing(path);
  out << "patientId,class\n";
  for (std::size_t i = 0; i < patients.size(); ++i) {
    const std::size_t rows = std::max<std::size_t>(1, patients[i].boxes.size());
    for (std::size_t r = 0; r < rows; ++r)
      out << csv_field(patients[i].patient_id) << ',' << names[i] << '\n';
  }
  finish_writing(out, path);
}

}  // namespace chestlab

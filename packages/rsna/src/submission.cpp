#include "chestlab/rsna/submission.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "chestlab/errors.h"

namespace chestlab::rsna {

namespace {

constexpr const char* kHeader = "patientId,PredictionString";
constexpr const char* kGroupMeaning = "confidence x y width height";

std::string_view trim(std::string_view s) {
  const char* space = " \t\r\n";
  const auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

std::vector<std::string_view> split_whitespace(std::string_view s) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) tokens.push_back(s.substr(start, i - start));
  }
  return tokens;
}

double parse_number(std::string_view token, std::size_t position) {
  double value = 0.0;
  const char* begin = token.data();
  const char* end = begin + token.size();
  if (!token.empty() && token.front() == '+') ++begin;  // from_chars rejects a leading '+'
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value))
    throw std::invalid_argument(fmt::format("value {} '{}' is not a finite number", position + 1,
                                            token));
  return value;
}

ScoredBox parse_group(const std::vector<std::string_view>& tokens, std::size_t first) {
  double v[5];
  for (std::size_t k = 0; k < 5; ++k) v[k] = parse_number(tokens[first + k], first + k);
  if (v[3] < 0 || v[4] < 0)
    throw std::invalid_argument(fmt::format(
        "box {} ({} {} {} {} {}) has a negative width or height", first / 5 + 1,
        tokens[first], tokens[first + 1], tokens[first + 2], tokens[first + 3], tokens[first + 4]));
  return ScoredBox{v[0], Box{v[1], v[2], v[3], v[4]}};
}

std::string_view strip_bom(std::string_view line) {
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (line.substr(0, bom.size()) == bom) line.remove_prefix(bom.size());
  return line;
}

std::string_view unquote(std::string_view field) {
  if (field.size() >= 2 && field.front() == '"' && field.back() == '"')
    return field.substr(1, field.size() - 2);
  return field;
}

void check_header(std::string_view line, const std::string& source) {
  if (trim(strip_bom(line)) != kHeader)
    throw DataError(source, fmt::format("line 1: expected the header '{}', found '{}'", kHeader,
                                        trim(strip_bom(line))));
}

SubmissionRow parse_row(std::string_view line) {
  const auto comma = line.find(',');
  if (comma == std::string_view::npos)
    throw std::invalid_argument("expected 'patientId,PredictionString' (no comma found)");
  std::string_view rest = line.substr(comma + 1);
  if (rest.find(',') != std::string_view::npos)
    throw std::invalid_argument(
        "more than 2 fields: separate boxes with spaces, not commas");
  SubmissionRow row;
  row.patient_id = std::string(trim(line.substr(0, comma)));
  if (row.patient_id.empty()) throw std::invalid_argument("empty patientId");
  row.boxes = parse_prediction_string(std::string(unquote(trim(rest))));
  return row;
}

// A box scaled back from a small mask can start at -0.3 pixels; "-0" would be a valid
// number but looks like a bug to whoever reads the file.
std::string format_coordinate(double value, int decimals) {
  std::string text = fmt::format("{:.{}f}", value, decimals);
  if (text.front() == '-' && text.find_first_not_of("0.", 1) == std::string::npos) text.erase(0, 1);
  return text;
}

}  // namespace

std::vector<ScoredBox> parse_prediction_string(const std::string& text) {
  const auto tokens = split_whitespace(text);
  if (tokens.size() % 5 != 0)
    throw std::invalid_argument(fmt::format(
        "PredictionString has {} values; expected groups of 5 ({})", tokens.size(), kGroupMeaning));
  std::vector<ScoredBox> boxes;
  boxes.reserve(tokens.size() / 5);
  for (std::size_t first = 0; first < tokens.size(); first += 5)
    boxes.push_back(parse_group(tokens, first));
  return boxes;
}

Submission parse_submission(std::istream& in, const std::string& source_name) {
  std::string line;
  if (!std::getline(in, line)) throw DataError(source_name, "empty file: expected a header line");
  check_header(line, source_name);
  Submission rows;
  std::unordered_map<std::string, std::size_t> line_of_patient;
  for (std::size_t line_number = 2; std::getline(in, line); ++line_number) {
    if (trim(line).empty()) continue;
    SubmissionRow row;
    try {
      row = parse_row(trim(line));
    } catch (const std::invalid_argument& e) {
      throw DataError(source_name, fmt::format("line {}: {}", line_number, e.what()));
    }
    auto [it, inserted] = line_of_patient.emplace(row.patient_id, line_number);
    if (!inserted)
      throw DataError(source_name, fmt::format("line {}: patient {} already appeared on line {}",
                                               line_number, row.patient_id, it->second));
    rows.push_back(std::move(row));
  }
  return rows;
}

Submission read_submission(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  if (!in) throw DataError(csv.string(), "cannot open the submission file");
  return parse_submission(in, csv.string());
}

std::string format_prediction_string(const std::vector<ScoredBox>& boxes,
                                     int coordinate_decimals) {
  if (coordinate_decimals < 0 || coordinate_decimals > 6)
    throw std::invalid_argument(
        fmt::format("coordinate_decimals must be in [0, 6], got {}", coordinate_decimals));
  std::string out;
  for (const ScoredBox& b : boxes) {
    if (!out.empty()) out += ' ';
    out += fmt::format("{:.4f}", b.score);
    for (double v : {b.box.x, b.box.y, b.box.w, b.box.h})
      out += ' ' + format_coordinate(v, coordinate_decimals);
  }
  return out;
}

void write_submission(std::ostream& out, const Submission& submission, int coordinate_decimals) {
  out << kHeader << '\n';
  for (const SubmissionRow& row : submission)
    out << row.patient_id << ',' << format_prediction_string(row.boxes, coordinate_decimals)
        << '\n';
}

void write_submission(const std::filesystem::path& csv, const Submission& submission,
                      int coordinate_decimals) {
  std::ofstream out(csv);
  if (!out) throw DataError(csv.string(), "cannot create the submission file");
  write_submission(out, submission, coordinate_decimals);
  out.flush();
  if (!out) throw DataError(csv.string(), "write failed (disk full?)");
}

}  // namespace chestlab::rsna

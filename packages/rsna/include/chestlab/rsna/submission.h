// RSNA submission files:
//
//   patientId,PredictionString
//   0004cfab-14fd-4e49-80ba-63a80b6bddd6,0.9512 264 152 213 379 0.5020 562 152 256 453
//   00313ee0-9eaa-42f4-b0ab-c148ed3241cd,
//
// PredictionString is zero or more groups of `confidence x y width height` separated by
// spaces, in pixels of the 1024x1024 images; empty for a patient without boxes.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "chestlab/rsna/metric.h"

namespace chestlab::rsna {

struct SubmissionRow {
  std::string patient_id;
  std::vector<ScoredBox> boxes;  // in file order
};

// Rows in file order; each patient at most once.
using Submission = std::vector<SubmissionRow>;

// Parses a PredictionString. Throws std::invalid_argument naming the offending token when
// the number of values is not a multiple of 5, a value is not a finite number, or a width
// or height is negative.
std::vector<ScoredBox> parse_prediction_string(const std::string& text);

// Reads a submission. Throws DataError naming the file and line for a missing or wrong
// header, a malformed line (see parse_prediction_string), an empty patient id or a patient
// that appears twice. Accepts a UTF-8 BOM, CRLF line ends, blank lines and a
// PredictionString wrapped in double quotes.
Submission read_submission(const std::filesystem::path& csv);
// The same from a stream; `source_name` is used in error messages.
Submission parse_submission(std::istream& in, const std::string& source_name);

// Confidence with 4 decimals; coordinates rounded to `coordinate_decimals` decimals. The
// default 0 writes integer pixels as the competition's sample submission and the public
// kernels did (the metric works on any numbers; 1024-pixel images lose nothing visible).
std::string format_prediction_string(const std::vector<ScoredBox>& boxes,
                                     int coordinate_decimals = 0);
void write_submission(std::ostream& out, const Submission& submission,
                      int coordinate_decimals = 0);
// Throws DataError when the file cannot be written.
void write_submission(const std::filesystem::path& csv, const Submission& submission,
                      int coordinate_decimals = 0);

}  // namespace chestlab::rsna

// Split files: the fold of every sample of an experiment as a CSV file. `chestlab splits`
// writes one; `[cv] splits = "file.csv"` trains on one, after checking it against the dataset
// (docs/experiment-format.md#split-files). Torch-free and domain-free: a sample is an id, a
// group (a patient) and a class label.
//
// The file: a header line naming the columns, then one row per sample and repeat.
//
//   id,group,class,repeat,fold
//   synth-0,synth-0,1,0,2
//
// `id` and `fold` are required; `group`, `class` and `repeat` may be left out (repeat then
// reads as 0), other columns are ignored, and the columns may come in any order. `fold` is a
// fold number 0..folds-1 (k-fold) or train, val or test (holdout). Fields follow RFC 4180
// (quoted when they hold a comma or a quote) and a record is one line (no line breaks inside
// quotes). `class` is written for people and other tools; chestlab does not read it.
//
// `repeat` numbers fold assignments: with [cv] repeats = R (repeated cross-validation) the
// file holds R complete assignments, repeats 0 to R-1, every sample once in each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace chestlab {

// A dataset sample as a split file names it.
struct SplitSample {
  std::string id;
  std::string group;       // the patient: samples of a group always share a fold
  std::int64_t label = 0;  // the class k-fold stratifies by
};

enum class SplitMode { KFold, Holdout };

// The parts of a holdout split, as an assignment numbers them.
enum HoldoutPart : int { kTrainPart = 0, kValPart = 1, kTestPart = 2 };

// "id,group,class,repeat,fold": the header line format_split_file writes.
extern const char* const kSplitFileHeader;

// `assignments[r][i]`: sample i's fold (k-fold) or HoldoutPart (holdout) in repeat r.
using SplitAssignments = std::vector<std::vector<int>>;

// The file's text: the header, then for each repeat one row per sample in dataset order,
// the fold written as its number or as train, val or test. Throws std::invalid_argument when
// there is no repeat or the sizes differ.
std::string format_split_file(const std::vector<SplitSample>& samples, const SplitAssignments& assignments,
                              SplitMode mode);

// One data row as read.
struct SplitRow {
  std::size_t line = 0;  // 1-based line of the file
  std::string id;
  std::string group;  // "" when the file has no group column
  std::int64_t repeat = 0;
  bool holdout_part = false;  // fold was train, val or test (then `fold` is a HoldoutPart)
  std::int64_t fold = 0;
};

// The rows of a split file's text. Throws DataError (file `source_name`) naming the line of
// every problem found (up to 20): a header without `id` or `fold` or with a column twice, a
// malformed line (field count, unterminated quote, empty id, a repeat that is no number
// >= 0, a fold that is neither a number >= 0 nor train, val or test), a sample listed twice
// in one repeat; and an empty file.
std::vector<SplitRow> parse_split_rows(const std::string& text, const std::string& source_name);

// The assignments the rows make for `samples` (dataset order), one per repeat 0..repeats-1,
// as format_split_file takes them, once the rows are checked against the dataset and the [cv]
// settings. Throws DataError naming the file and the line of every problem found (up to 20):
// a sample the dataset lacks, a dataset sample the file lacks (in any repeat), a repeat >=
// `repeats`, a fold written for the other mode, a fold >= `folds` (k-fold), a fold or the
// train or val part with no sample, and a group (the dataset's, or the file's group column)
// whose samples lie in two folds or parts of one repeat. `folds` is only read in k-fold mode.
SplitAssignments assign_split(const std::vector<SplitRow>& rows, const std::vector<SplitSample>& samples,
                              SplitMode mode, int folds, int repeats, const std::string& source_name);

// parse_split_rows and assign_split on the file at `path`. Throws DataError when it cannot be
// read.
SplitAssignments read_split_file(const std::string& path, const std::vector<SplitSample>& samples, SplitMode mode,
                                 int folds, int repeats);

// 16 hex digits naming the split the file at `path` makes: a hash of the (repeat, id, fold)
// of its rows in a canonical order, so that reordered rows or columns, quoting, line endings
// and the group and class columns leave it unchanged. Throws like parse_split_rows.
std::string split_file_digest(const std::string& path);

}  // namespace chestlab

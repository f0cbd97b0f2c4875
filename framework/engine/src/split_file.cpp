#include "chestlab/engine/split_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "chestlab/errors.h"
#include "chestlab/hash.h"
#include "text_grid.h"

namespace chestlab {

const char* const kSplitFileHeader = "id,group,class,repeat,fold";

namespace {

constexpr const char* kPartNames[] = {"train", "val", "test"};
constexpr std::size_t kProblemsShown = 20;
constexpr std::size_t kIdsShown = 5;

// Every problem of one file, reported together so that a user fixes the file in one pass.
class Problems {
 public:
  explicit Problems(std::string file) : file_(std::move(file)) {}

  // `line` 0: a problem of the whole file.
  void add(std::size_t line, const std::string& what) {
    ++count_;
    if (shown_.size() < kProblemsShown) shown_.push_back(line ? fmt::format("line {}: {}", line, what) : what);
  }
  bool empty() const { return count_ == 0; }
  std::size_t count() const { return count_; }

  void raise_if_any() const {
    if (count_ == 0) return;
    if (count_ == 1) throw DataError(file_, shown_.front());
    std::string text = fmt::format("{} problems in this split file:", count_);
    for (const std::string& s : shown_) text += "\n  " + s;
    if (count_ > shown_.size()) text += fmt::format("\n  ... and {} more", count_ - shown_.size());
    throw DataError(file_, text);
  }

 private:
  std::string file_;
  std::vector<std::string> shown_;
  std::size_t count_ = 0;
};

// A value from the file inside a message: quoted, and cut when it is absurdly long.
std::string quoted(std::string_view text) {
  constexpr std::size_t kLongest = 80;
  if (text.size() > kLongest) return fmt::format("\"{}...\"", text.substr(0, kLongest));
  return fmt::format("\"{}\"", text);
}

// Splits one record (RFC 4180 within a line): fields separated by commas, a field may be
// quoted, and a quote inside a quoted field is doubled. False for an unterminated quote.
bool split_record(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted_field = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted_field) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted_field = false;
      }
    } else if (c == '"') {
      quoted_field = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return !quoted_field;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// A number >= 0 written in decimal digits only ("+1", "1.0" and "0x1" are not).
std::optional<std::int64_t> count_number(std::string_view text) {
  text = trimmed(text);
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int> part_number(std::string_view text) {
  text = trimmed(text);
  for (int p = 0; p < 3; ++p)
    if (text == kPartNames[p]) return p;
  return std::nullopt;
}

// Where each column is; nullopt for an absent optional one.
struct Columns {
  std::size_t count = 0;
  std::size_t id = 0, fold = 0;
  std::optional<std::size_t> group, repeat;
};

// The header, or nullopt after reporting why it is not one.
std::optional<Columns> read_header(const std::vector<std::string>& names, std::size_t line, Problems& problems) {
  Columns columns;
  columns.count = names.size();
  std::map<std::string, std::size_t> position;
  bool ok = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string name(trimmed(names[i]));
    const bool known = name == "id" || name == "group" || name == "class" || name == "repeat" || name == "fold";
    if (known && !position.emplace(name, i).second) {
      problems.add(line, fmt::format("the header names column \"{}\" twice", name));
      ok = false;
    }
  }
  for (const char* required : {"id", "fold"}) {
    if (position.count(required)) continue;
    problems.add(line, fmt::format("the header has no \"{}\" column: the first line names the columns, e.g. {} "
                                   "(id and fold are required), found {}",
                                   required, kSplitFileHeader, quoted(text::join(names, ","))));
    ok = false;
  }
  if (!ok) return std::nullopt;
  columns.id = position.at("id");
  columns.fold = position.at("fold");
  if (position.count("group")) columns.group = position.at("group");
  if (position.count("repeat")) columns.repeat = position.at("repeat");
  return columns;
}

// One data line into `row`; false after reporting what is wrong with it.
bool read_row(const std::vector<std::string>& fields, const Columns& columns, std::size_t line, Problems& problems,
              SplitRow& row) {
  if (fields.size() != columns.count) {
    problems.add(line, fmt::format("expected {} fields like the header, found {}", columns.count, fields.size()));
    return false;
  }
  bool ok = true;
  row.line = line;
  row.id = fields[columns.id];
  if (row.id.empty()) {
    problems.add(line, "empty id");
    ok = false;
  }
  if (columns.group) row.group = fields[*columns.group];
  row.repeat = 0;
  if (columns.repeat) {
    if (const auto repeat = count_number(fields[*columns.repeat])) {
      row.repeat = *repeat;
    } else {
      problems.add(line, fmt::format("repeat {} is not a number >= 0", quoted(fields[*columns.repeat])));
      ok = false;
    }
  }
  const std::string& fold = fields[columns.fold];
  if (const auto part = part_number(fold)) {
    row.holdout_part = true;
    row.fold = *part;
  } else if (const auto number = count_number(fold)) {
    row.holdout_part = false;
    row.fold = *number;
  } else {
    problems.add(line,
                 fmt::format("fold {} is neither a fold number (0, 1, ...) nor train, val or test", quoted(fold)));
    ok = false;
  }
  return ok;
}

std::string fold_text(const SplitRow& row) {
  return row.holdout_part ? kPartNames[row.fold] : std::to_string(row.fold);
}

std::string fold_name(SplitMode mode, int fold) {
  return mode == SplitMode::Holdout ? fmt::format("part {}", kPartNames[fold]) : fmt::format("fold {}", fold);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, "cannot open the split file ([cv] splits)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw DataError(path, "cannot read the split file ([cv] splits)");
  return text.str();
}

// Whether the row's fold fits the [cv] settings; reports why not.
bool fold_fits(const SplitRow& row, SplitMode mode, int folds, Problems& problems) {
  if (mode == SplitMode::KFold && row.holdout_part) {
    problems.add(row.line, fmt::format("fold {} is a holdout part, but [cv] mode = \"kfold\" (set [cv] mode = "
                                       "\"holdout\" for a train/val/test split, or give fold numbers)",
                                       kPartNames[row.fold]));
    return false;
  }
  if (mode == SplitMode::Holdout && !row.holdout_part) {
    problems.add(row.line, fmt::format("fold {} is a fold number, but [cv] mode = \"holdout\" (a holdout split's "
                                       "fold column says train, val or test)",
                                       row.fold));
    return false;
  }
  if (mode == SplitMode::KFold && row.fold >= folds) {
    problems.add(row.line, fmt::format("fold {} is out of range: [cv] folds = {} numbers the folds 0 to {}", row.fold,
                                       folds, folds - 1));
    return false;
  }
  return true;
}

// Samples without a row (a refused row counts as a row: it was reported already).
void check_complete(const std::vector<SplitSample>& samples, const std::vector<bool>& listed,
                    const std::string& in_repeat, Problems& problems) {
  std::vector<std::string> missing;
  std::size_t count = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (listed[i]) continue;
    if (missing.size() < kIdsShown) missing.push_back(quoted(samples[i].id));
    ++count;
  }
  if (count == 0) return;
  problems.add(0, fmt::format("{}{} of the dataset's {} samples have no row (each needs one): {}{}", in_repeat, count,
                              samples.size(), text::join(missing, ", "), count > missing.size() ? ", ..." : ""));
}

void check_no_empty_fold(const std::vector<int>& assignment, SplitMode mode, int folds, const std::string& in_repeat,
                         Problems& problems) {
  if (mode == SplitMode::KFold && static_cast<std::size_t>(folds) > assignment.size()) {
    problems.add(0, fmt::format("[cv] folds = {} is more than the dataset's {} samples: some folds would be empty",
                                folds, assignment.size()));
    return;
  }
  const int parts = mode == SplitMode::Holdout ? 3 : folds;
  std::vector<std::size_t> size(static_cast<std::size_t>(parts), 0);
  for (int a : assignment)
    if (a >= 0) ++size[static_cast<std::size_t>(a)];
  if (mode == SplitMode::Holdout) {
    for (int p : {kTrainPart, kValPart})
      if (size[static_cast<std::size_t>(p)] == 0)
        problems.add(0, fmt::format("{}the {} part has no sample (a holdout split needs train and val samples; "
                                    "test may be empty)",
                                    in_repeat, kPartNames[p]));
    return;
  }
  for (int k = 0; k < folds; ++k)
    if (size[static_cast<std::size_t>(k)] == 0)
      problems.add(0, fmt::format("{}fold {} has no sample: [cv] folds = {} needs samples in each of the folds 0 to "
                                  "{} (does [cv] folds match the file?)",
                                  in_repeat, k, folds, folds - 1));
}

// A group whose samples lie in two folds (or parts) leaks a patient from training into
// validation. `group_of(i)` is sample i's group under the grouping `what` describes.
template <class GroupOf>
void check_groups(const std::vector<SplitSample>& samples, const std::vector<int>& assignment,
                  const std::vector<std::size_t>& line_of, SplitMode mode, const std::string& what, GroupOf group_of,
                  const std::string& in_repeat, Problems& problems) {
  std::unordered_map<std::string, std::size_t> first_member;
  std::unordered_map<std::string, bool> reported;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (assignment[i] < 0) continue;
    const std::string& group = group_of(i);
    if (group.empty()) continue;
    const auto [it, inserted] = first_member.emplace(group, i);
    if (inserted || assignment[it->second] == assignment[i] || reported[group]) continue;
    reported[group] = true;
    const std::size_t j = it->second;
    problems.add(line_of[i], fmt::format("{}{} {} spans {} (sample {}, line {}) and {} (sample {}); all samples of "
                                         "a group must share one {}",
                                         in_repeat, what, quoted(group), fold_name(mode, assignment[j]), quoted(samples[j].id),
                                         line_of[j], fold_name(mode, assignment[i]), quoted(samples[i].id),
                                         mode == SplitMode::Holdout ? "part" : "fold"));
  }
}

// One record: sample `s` in fold (or part) `a` of repeat `r`.
std::string split_record_line(const SplitSample& s, int a, std::size_t r, std::size_t i, SplitMode mode) {
  // A record is one line: the reader would split a quoted line break.
  for (const std::string* text : {&s.id, &s.group})
    if (text->find_first_of("\r\n") != std::string::npos)
      throw DataError("split file", fmt::format("sample {} has a line break in its id or group, which a split "
                                                "file cannot hold",
                                                quoted(s.id)));
  const bool valid = mode == SplitMode::Holdout ? a >= 0 && a < 3 : a >= 0;
  if (!valid) throw std::invalid_argument(fmt::format("format_split_file: sample {} has no fold ({})", i, a));
  const std::string fold = mode == SplitMode::Holdout ? kPartNames[a] : std::to_string(a);
  return fmt::format("{},{},{},{},{}\n", text::csv_field(s.id), text::csv_field(s.group), s.label, r, fold);
}

}  // namespace

std::string format_split_file(const std::vector<SplitSample>& samples, const SplitAssignments& assignments,
                              SplitMode mode) {
  if (assignments.empty()) throw std::invalid_argument("format_split_file: no repeat");
  for (const std::vector<int>& assignment : assignments)
    if (samples.size() != assignment.size())
      throw std::invalid_argument(
          fmt::format("format_split_file: {} assignments for {} samples", assignment.size(), samples.size()));
  std::string out = std::string(kSplitFileHeader) + "\n";
  for (std::size_t r = 0; r < assignments.size(); ++r)
    for (std::size_t i = 0; i < samples.size(); ++i) out += split_record_line(samples[i], assignments[r][i], r, i, mode);
  return out;
}

std::vector<SplitRow> parse_split_rows(const std::string& text, const std::string& source_name) {
  Problems problems(source_name);
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // a UTF-8 byte-order mark (spreadsheets)
  std::optional<Columns> columns;
  std::vector<SplitRow> rows;
  std::map<std::pair<std::int64_t, std::string>, std::size_t> first_line;  // (repeat, id) -> line
  std::vector<std::string> fields;
  for (std::size_t line = 1; !rest.empty(); ++line) {
    const std::size_t end = rest.find('\n');
    std::string_view record = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (!record.empty() && record.back() == '\r') record.remove_suffix(1);
    if (trimmed(record).empty()) continue;  // blank lines (e.g. at the end) hold no record
    if (!split_record(record, fields)) {
      problems.add(line, "unterminated quoted field (a record is one line)");
      if (!columns) break;
      continue;
    }
    if (!columns) {
      columns = read_header(fields, line, problems);
      if (!columns) break;  // without columns no row can be read
      continue;
    }
    SplitRow row;
    if (!read_row(fields, *columns, line, problems, row)) continue;
    const auto [it, inserted] = first_line.emplace(std::make_pair(row.repeat, row.id), line);
    if (!inserted) {
      problems.add(line, fmt::format("sample {} is listed twice in repeat {} (first on line {})", quoted(row.id),
                                     row.repeat, it->second));
      continue;
    }
    rows.push_back(std::move(row));
  }
  if (!columns && problems.empty())
    problems.add(0, fmt::format("empty file: expected the header line {} and one row per sample", kSplitFileHeader));
  problems.raise_if_any();
  return rows;
}

namespace {

// One repeat's assignment from its rows (already known to be of this repeat), checked.
std::vector<int> assign_repeat(const std::vector<const SplitRow*>& rows, const std::vector<SplitSample>& samples,
                               const std::unordered_map<std::string, std::size_t>& index_of, SplitMode mode,
                               int folds, const std::string& in_repeat, Problems& problems) {
  const std::size_t problems_before = problems.count();
  std::vector<int> assignment(samples.size(), -1);
  std::vector<std::size_t> line_of(samples.size(), 0);
  std::vector<const SplitRow*> row_of(samples.size(), nullptr);
  std::vector<bool> listed(samples.size(), false);
  for (const SplitRow* row : rows) {
    const auto it = index_of.find(row->id);
    if (it == index_of.end()) {
      problems.add(row->line, fmt::format("sample {} is not in the dataset", quoted(row->id)));
      continue;
    }
    const std::size_t i = it->second;
    listed[i] = true;
    if (!fold_fits(*row, mode, folds, problems)) continue;
    assignment[i] = static_cast<int>(row->fold);
    line_of[i] = row->line;
    row_of[i] = row;
  }
  check_complete(samples, listed, in_repeat, problems);
  check_no_empty_fold(assignment, mode, folds, in_repeat, problems);
  check_groups(
      samples, assignment, line_of, mode, "the dataset's group (patient)",
      [&](std::size_t i) -> const std::string& { return samples[i].group; }, in_repeat, problems);
  // The file's own group column may group more coarsely (a hospital) and is checked too, once
  // everything else holds: where it repeats the dataset's groups, a problem found above would
  // only be reported twice.
  if (problems.count() == problems_before)
    check_groups(
        samples, assignment, line_of, mode, "the file's group",
        [&](std::size_t i) -> const std::string& { return row_of[i] ? row_of[i]->group : samples[i].group; },
        in_repeat, problems);
  return assignment;
}

}  // namespace

SplitAssignments assign_split(const std::vector<SplitRow>& rows, const std::vector<SplitSample>& samples,
                              SplitMode mode, int folds, int repeats, const std::string& source_name) {
  Problems problems(source_name);
  std::unordered_map<std::string, std::size_t> index_of;
  index_of.reserve(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto [it, inserted] = index_of.emplace(samples[i].id, i);
    if (!inserted)
      problems.add(0, fmt::format("the dataset has two samples with id {} (numbers {} and {}): a split file names "
                                  "samples by id, so the dataset's ids must be unique",
                                  quoted(samples[i].id), it->second, i));
  }
  problems.raise_if_any();

  std::vector<std::vector<const SplitRow*>> rows_of_repeat(static_cast<std::size_t>(std::max(repeats, 1)));
  for (const SplitRow& row : rows) {
    if (row.repeat >= repeats) {
      problems.add(row.line, fmt::format("repeat {} is out of range: [cv] repeats = {} numbers the repeats 0 to {}",
                                         row.repeat, repeats, repeats - 1));
      continue;
    }
    rows_of_repeat[static_cast<std::size_t>(row.repeat)].push_back(&row);
  }
  SplitAssignments assignments;
  for (int r = 0; r < repeats; ++r) {
    const std::string in_repeat = repeats > 1 ? fmt::format("repeat {}: ", r) : "";
    assignments.push_back(
        assign_repeat(rows_of_repeat[static_cast<std::size_t>(r)], samples, index_of, mode, folds, in_repeat, problems));
  }
  problems.raise_if_any();
  return assignments;
}

SplitAssignments read_split_file(const std::string& path, const std::vector<SplitSample>& samples, SplitMode mode,
                                 int folds, int repeats) {
  return assign_split(parse_split_rows(read_file(path), path), samples, mode, folds, repeats, path);
}

std::string split_file_digest(const std::string& path) {
  const std::vector<SplitRow> rows = parse_split_rows(read_file(path), path);
  std::vector<std::string> lines;
  lines.reserve(rows.size());
  for (const SplitRow& row : rows) lines.push_back(fmt::format("{}\t{}\t{}\n", row.repeat, row.id, fold_text(row)));
  std::sort(lines.begin(), lines.end());
  std::string canonical;
  for (const std::string& line : lines) canonical += line;
  return to_hex(fnv1a64(canonical), 16);
}

}  // namespace chestlab

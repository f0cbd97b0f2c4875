// Split files (engine/split_file.h): what `chestlab splits` writes reads back to the same
// assignment, what other tools write is read too, and every refusal names the file, the
// line and what is wrong.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chestlab/engine/split_file.h"
#include "chestlab/errors.h"
#include "support.h"

using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

// Six samples of four patients: p1 and p3 have two images each.
const std::vector<SplitSample> kSamples = {{"a", "p1", 1}, {"b", "p1", 1}, {"c", "p2", 0},
                                           {"d", "p3", 0}, {"e", "p3", 0}, {"f", "p4", 1}};
const std::vector<int> kFolds = {0, 0, 1, 2, 2, 1};  // 3 folds, every patient in one

std::vector<int> assign(const std::string& text, SplitMode mode = SplitMode::KFold, int folds = 3) {
  return assign_split(parse_split_rows(text, "s.csv"), kSamples, mode, folds, 1, "s.csv").at(0);
}

// The message of the DataError reading `text` must raise.
std::string refusal(const std::string& text, SplitMode mode = SplitMode::KFold, int folds = 3) {
  try {
    assign(text, mode, folds);
  } catch (const DataError& e) {
    CHECK(e.file == "s.csv");
    return e.what();
  }
  FAIL("expected a DataError for:\n" << text);
  return "";
}

// The k-fold file for kSamples and kFolds, with line `line` (1 = the header) replaced.
std::string with_line(std::size_t line, const std::string& replacement) {
  const std::string text = format_split_file(kSamples, {kFolds}, SplitMode::KFold);
  std::string out;
  std::size_t start = 0;
  for (std::size_t n = 1; start < text.size(); ++n) {
    const std::size_t end = text.find('\n', start);
    out += (n == line ? replacement : text.substr(start, end - start)) + "\n";
    start = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("split file: what format_split_file writes reads back to the same assignment", "[split_file]") {
  const std::string text = format_split_file(kSamples, {kFolds}, SplitMode::KFold);
  CHECK(text ==
        "id,group,class,repeat,fold\n"
        "a,p1,1,0,0\nb,p1,1,0,0\nc,p2,0,0,1\nd,p3,0,0,2\ne,p3,0,0,2\nf,p4,1,0,1\n");
  CHECK(assign(text) == kFolds);

  const std::vector<int> parts = {kTrainPart, kTrainPart, kValPart, kTestPart, kTestPart, kTrainPart};
  const std::string holdout = format_split_file(kSamples, {parts}, SplitMode::Holdout);
  CHECK_THAT(holdout, Contains("\nc,p2,0,0,val\nd,p3,0,0,test\n"));
  CHECK(assign(holdout, SplitMode::Holdout) == parts);
}

TEST_CASE("split file: ids and groups with commas and quotes survive the round trip", "[split_file]") {
  const std::vector<SplitSample> odd = {{"x,1", "p \"one\"", 0}, {"y", "p2", 1}};
  const std::string text = format_split_file(odd, {{0, 1}}, SplitMode::KFold);
  CHECK_THAT(text, Contains("\"x,1\",\"p \"\"one\"\"\",0,0,0\n"));
  CHECK(assign_split(parse_split_rows(text, "s.csv"), odd, SplitMode::KFold, 2, 1, "s.csv").at(0) == std::vector<int>{0, 1});
}

TEST_CASE("split file: other tools' files are read (column order, optional columns, BOM, CRLF)", "[split_file]") {
  // Only the required columns, in another order, with an extra column, CRLF line ends, a
  // byte-order mark, blank lines and rows in another order.
  const std::string text =
      "\xEF\xBB\xBF"
      "fold,note,id\r\n2,x,d\r\n0,,a\r\n\r\n0,,b\r\n1,,c\r\n2,,e\r\n1,,f\r\n\r\n";
  CHECK(assign(text) == kFolds);
  // Spaces around numbers are tolerated; ids are taken as written.
  CHECK(assign("id,fold,repeat\na, 0 ,0\nb,0,0\nc,1,0\nd,2,0\ne,2,0\nf,1,0\n") == kFolds);
}

TEST_CASE("split file: a sample the dataset lacks is refused with its line", "[split_file]") {
  const std::string why = refusal(with_line(4, "zz,p2,0,0,1"));
  CHECK_THAT(why, Contains("s.csv: "));
  CHECK_THAT(why, Contains("line 4: sample \"zz\" is not in the dataset"));
  // c, which line 4 held, is now missing as well.
  CHECK_THAT(why, Contains("1 of the dataset's 6 samples have no row (each needs one): \"c\""));
}

TEST_CASE("split file: a dataset sample missing from the file is refused", "[split_file]") {
  const std::string why = refusal("id,fold\na,0\nb,0\nc,1\nf,1\nd,2\n");
  CHECK_THAT(why, Contains("s.csv: 1 of the dataset's 6 samples have no row (each needs one): \"e\""));
}

TEST_CASE("split file: a sample listed twice in one repeat is refused with both lines", "[split_file]") {
  const std::string text = format_split_file(kSamples, {kFolds}, SplitMode::KFold) + "c,p2,0,0,1\n";
  try {
    parse_split_rows(text, "s.csv");
    FAIL("a duplicate was read");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Contains("s.csv: line 8: sample \"c\" is listed twice in repeat 0 (first on line 4)"));
  }
}

TEST_CASE("split file: a patient in two folds is refused, naming both samples and lines", "[split_file]") {
  // b (p1, line 3) moved from fold 0 to fold 1.
  const std::string why = refusal(with_line(3, "b,p1,1,0,1"));
  CHECK_THAT(why, Contains("line 3: the dataset's group (patient) \"p1\" spans fold 0 (sample \"a\", line 2) and "
                           "fold 1 (sample \"b\"); all samples of a group must share one fold"));
  // The same in a holdout split: a patient in train and test.
  const std::string holdout = "id,fold\na,train\nb,test\nc,val\nd,train\ne,train\nf,train\n";
  CHECK_THAT(refusal(holdout, SplitMode::Holdout), Contains("\"p1\" spans part train (sample \"a\", line 2) and "
                                                            "part test (sample \"b\")"));
}

TEST_CASE("split file: the file's own group column is checked too", "[split_file]") {
  // The dataset's patients are each in one fold, but the file groups c and d (hospital h1)
  // and puts them in different folds.
  const std::string text = "id,group,fold\na,h0,0\nb,h0,0\nc,h1,1\nd,h1,2\ne,h1,2\nf,h2,1\n";
  CHECK_THAT(refusal(text), Contains("line 5: the file's group \"h1\" spans fold 1 (sample \"c\", line 4) and fold 2 "
                                     "(sample \"d\")"));
}

TEST_CASE("split file: a fold out of range or an empty fold is refused", "[split_file]") {
  CHECK_THAT(refusal(with_line(7, "f,p4,1,0,3")),
             Contains("line 7: fold 3 is out of range: [cv] folds = 3 numbers the folds 0 to 2"));
  // Written for 3 folds, read with [cv] folds = 4: fold 3 is empty.
  CHECK_THAT(refusal(format_split_file(kSamples, {kFolds}, SplitMode::KFold), SplitMode::KFold, 4),
             Contains("fold 3 has no sample: [cv] folds = 4 needs samples in each of the folds 0 to 3"));
  // A holdout split needs train and val samples (test may be empty).
  CHECK(assign("id,fold\na,train\nb,train\nc,val\nd,train\ne,train\nf,val\n", SplitMode::Holdout).size() == 6);
  CHECK_THAT(refusal("id,fold\na,train\nb,train\nc,test\nd,train\ne,train\nf,test\n", SplitMode::Holdout),
             Contains("the val part has no sample"));
}

TEST_CASE("split file: folds written for the other mode are refused", "[split_file]") {
  CHECK_THAT(refusal(with_line(2, "a,p1,1,0,train")),
             Contains("line 2: fold train is a holdout part, but [cv] mode = \"kfold\""));
  CHECK_THAT(refusal(format_split_file(kSamples, {kFolds}, SplitMode::KFold), SplitMode::Holdout),
             Contains("line 2: fold 0 is a fold number, but [cv] mode = \"holdout\""));
}

TEST_CASE("split file: repeated cross-validation, one complete assignment per repeat, each checked", "[split_file]") {
  const std::vector<int> second = {2, 2, 0, 1, 1, 0};  // another 3-fold assignment, patients kept whole
  const std::string text = format_split_file(kSamples, {kFolds, second}, SplitMode::KFold);
  const auto rows = parse_split_rows(text, "s.csv");
  REQUIRE(rows.size() == 12);
  CHECK(rows[6].repeat == 1);
  CHECK(rows[6].line == 8);
  CHECK(assign_split(rows, kSamples, SplitMode::KFold, 3, 2, "s.csv") == SplitAssignments{kFolds, second});

  // A repeat beyond [cv] repeats.
  CHECK_THAT(refusal(text), Contains("line 8: repeat 1 is out of range: [cv] repeats = 1 numbers the repeats 0 to 0"));
  // A repeat the file lacks, or lacks a sample of.
  const auto refused = [&](const std::string& file) -> std::string {
    try {
      assign_split(parse_split_rows(file, "s.csv"), kSamples, SplitMode::KFold, 3, 2, "s.csv");
    } catch (const DataError& e) {
      return e.what();
    }
    FAIL("read with [cv] repeats = 2:\n" << file);
    return "";
  };
  CHECK_THAT(refused(format_split_file(kSamples, {kFolds}, SplitMode::KFold)),
             Contains("repeat 1: 6 of the dataset's 6 samples have no row"));
  CHECK_THAT(refused(text.substr(0, text.rfind("f,"))), Contains("repeat 1: 1 of the dataset's 6 samples have no row"));
  // A patient split in repeat 1 only: the message names the repeat.
  const std::vector<int> leaky = {2, 1, 0, 1, 1, 0};
  CHECK_THAT(refused(format_split_file(kSamples, {kFolds, leaky}, SplitMode::KFold)),
             Contains("line 9: repeat 1: the dataset's group (patient) \"p1\" spans fold 2 (sample \"a\", line 8) "
                      "and fold 1 (sample \"b\")"));
}

TEST_CASE("split file: malformed lines are refused with their line numbers, all at once", "[split_file]") {
  CHECK_THAT(refusal(with_line(3, "b,p1,1,0")), Contains("line 3: expected 5 fields like the header, found 4"));
  CHECK_THAT(refusal(with_line(3, "\"b,p1,1,0,0")), Contains("line 3: unterminated quoted field"));
  CHECK_THAT(refusal(with_line(3, ",p1,1,0,0")), Contains("line 3: empty id"));
  CHECK_THAT(refusal(with_line(3, "b,p1,1,0,-1")),
             Contains("line 3: fold \"-1\" is neither a fold number (0, 1, ...) nor train, val or test"));
  CHECK_THAT(refusal(with_line(3, "b,p1,1,0,1.0")), Contains("fold \"1.0\" is neither"));
  CHECK_THAT(refusal(with_line(3, "b,p1,1,0,99999999999999999999")), Contains("is neither a fold number"));
  CHECK_THAT(refusal(with_line(3, "b,p1,1,x,0")), Contains("line 3: repeat \"x\" is not a number >= 0"));

  // Several problems: every one with its line, in one message.
  const std::string text = "id,fold\na,0\nb\nc,zero\nd,2\ne,2\nf,1\n";
  try {
    parse_split_rows(text, "s.csv");
    FAIL("read");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Contains("s.csv: 2 problems in this split file:\n  line 3: expected 2 fields"));
    CHECK_THAT(e.what(), Contains("\n  line 4: fold \"zero\" is neither"));
  }
}

TEST_CASE("split file: a header without id or fold, or an empty file, is refused", "[split_file]") {
  CHECK_THAT(refusal("a,0\nb,0\n"), Contains("line 1: the header has no \"id\" column: the first line names the "
                                             "columns, e.g. id,group,class,repeat,fold"));
  CHECK_THAT(refusal("id,group\na,p1\n"), Contains("line 1: the header has no \"fold\" column"));
  CHECK_THAT(refusal("id,fold,fold\na,0,0\n"), Contains("line 1: the header names column \"fold\" twice"));
  CHECK_THAT(refusal(""), Contains("s.csv: empty file: expected the header line id,group,class,repeat,fold"));
  CHECK_THAT(refusal("\n\r\n  \n"), Contains("empty file"));
}

TEST_CASE("split file: a dataset with repeated ids cannot be split by file", "[split_file]") {
  std::vector<SplitSample> twice = kSamples;
  twice.push_back({"a", "p9", 0});
  try {
    assign_split(parse_split_rows("id,fold\na,0\n", "s.csv"), twice, SplitMode::KFold, 2, 1, "s.csv");
    FAIL("read");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Contains("the dataset has two samples with id \"a\" (numbers 0 and 6)"));
  }
}

TEST_CASE("split file: files are read from disk; the digest names the split, not the spelling", "[split_file]") {
  const std::filesystem::path dir = test::scratch_dir("split_file");
  const auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  };
  const std::string ours = write("ours.csv", format_split_file(kSamples, {kFolds}, SplitMode::KFold));
  CHECK(read_split_file(ours, kSamples, SplitMode::KFold, 3, 1).at(0) == kFolds);

  // The same split, reordered, without group and class, quoted, CRLF: the same digest.
  const std::string theirs = write("theirs.csv", "fold,\"id\"\r\n1,f\r\n2,\"e\"\r\n2,d\r\n1,c\r\n0,b\r\n0,a\r\n");
  CHECK(split_file_digest(ours) == split_file_digest(theirs));
  CHECK(split_file_digest(ours).size() == 16);
  // Another split: another digest.
  const std::string moved = write("moved.csv", "id,fold\na,1\nb,1\nc,0\nd,2\ne,2\nf,0\n");
  CHECK(split_file_digest(moved) != split_file_digest(ours));

  const std::string missing = (dir / "missing.csv").string();
  CHECK_THROWS_MATCHES(read_split_file(missing, kSamples, SplitMode::KFold, 3, 1), DataError,
                       Catch::Matchers::Message(missing + ": cannot open the split file ([cv] splits)"));
  CHECK_THROWS_AS(split_file_digest(missing), DataError);
}

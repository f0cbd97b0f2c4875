// Split files and the fold seed end to end, through the chestlab program: `chestlab splits`
// written and read back as [cv] splits gives the same folds (and, the training seed being the
// same, the same numbers); a file the dataset contradicts is refused before anything trains;
// [train] seed changes the training and not the folds, [cv] seed the folds; files that set
// neither keep their run ids; [cv] repeats makes R fold assignments, recorded and compared per
// repeat.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"
#include "chestlab/engine/split_file.h"
#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;
using Catch::Matchers::Contains;

namespace {

// 24 images of 10 patients (2 or 3 each), 3 folds x 2 epochs with a flip: seconds per run.
const char* kToml = R"(
[experiment]
name = "splits"
seed = 7

[dataset]
plugin = "synthetic_cxr"
count = 24
patients = 10
image_size = 32
positive_fraction = 0.6

[[dataset.augment]]
type = "hflip"
p = 0.5

[model]
plugin = "resnet_seg"
channels = 4
depth = 2
blocks = 1

[loss]
plugin = "bce_jaccard"

[optimizer]
lr = 0.003

[[metrics]]
plugin = "mean_iou"

[train]
epochs = 2
batch_size = 8
workers = 1
threads = 2

[cv]
folds = 3
)";

fs::path write_experiment(const fs::path& dir) {
  const fs::path path = dir / "splits.toml";
  std::ofstream(path) << kToml;
  return path;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The program with `args`; its exit status, its output in `log`.
int run_chestlab(const std::string& args, std::string& log) {
  return run_command(shell_quote(chestlab_exe()) + " " + args, &log);
}

// `chestlab splits` of the experiment with `sets`, into `out`; the file's text.
std::string splits(const fs::path& toml, const fs::path& out, const std::string& sets = "") {
  std::string log;
  const int code =
      run_chestlab("splits " + shell_quote(toml.string()) + " --out " + shell_quote(out.string()) + " " + sets, log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK_THAT(log, Contains("wrote " + out.string() + ": 24 samples of 10 groups"));
  return read_text(out);
}

// `chestlab run` into `out` (which must hold no run yet); the run file.
fs::path train(const fs::path& toml, const fs::path& out, const std::string& sets = "") {
  std::string log;
  const int code = run_chestlab(
      "run " + shell_quote(toml.string()) + " --output " + shell_quote(out.string()) + " --quiet " + sets, log);
  INFO(log);
  REQUIRE(code == 0);
  return only_run_file(out);
}

// id -> fold column of a split file's text.
std::map<std::string, std::string> folds_of(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const SplitRow& row : parse_split_rows(text, "split")) out[row.id] = std::to_string(row.fold);
  return out;
}

// The split file with the data row of `id` given fold `fold`.
std::string with_fold(const std::string& text, const std::string& id, int fold) {
  std::istringstream lines(text);
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(id + ",", 0) == 0) line = line.substr(0, line.rfind(',') + 1) + std::to_string(fold);
    out += line + "\n";
  }
  return out;
}

// The split file with every row of patients `a` and `b` given the other's fold.
std::string swap_patients(const std::string& text, const std::string& a, const std::string& b) {
  std::map<std::string, std::string> fold_of_group;
  for (const SplitRow& row : parse_split_rows(text, "split")) fold_of_group[row.group] = std::to_string(row.fold);
  std::istringstream lines(text);
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    const std::size_t first = line.find(','), second = line.find(',', first + 1);
    const std::string group = line.substr(first + 1, second - first - 1);
    if (group == a || group == b) line = line.substr(0, line.rfind(',') + 1) + fold_of_group[group == a ? b : a];
    out += line + "\n";
  }
  return out;
}

void check_same_folds(const RunInfo& a, const RunInfo& b) {
  REQUIRE(a.folds.size() == b.folds.size());
  for (std::size_t k = 0; k < a.folds.size(); ++k) {
    INFO("fold " << k);
    CHECK(a.folds[k].val_ids == b.folds[k].val_ids);
    CHECK(a.folds[k].train_ids == b.folds[k].train_ids);
  }
}

}  // namespace

TEST_CASE("splits: written, then read back as [cv] splits: the same folds and the same numbers", "[splits][e2e]") {
  const fs::path dir = scratch_dir("splits_round_trip");
  const fs::path toml = write_experiment(dir);
  const std::string text = splits(toml, dir / "folds.csv");
  CHECK(text.rfind("id,group,class,repeat,fold\n", 0) == 0);
  // Every sample once, every patient in one fold: the file passes its own check.
  const std::vector<SplitRow> rows = parse_split_rows(text, "folds.csv");
  CHECK(rows.size() == 24);
  std::map<std::string, std::set<std::int64_t>> folds_of_patient;
  for (const SplitRow& row : rows) folds_of_patient[row.group].insert(row.fold);
  CHECK(folds_of_patient.size() == 10);
  for (const auto& [patient, folds] : folds_of_patient) CHECK(folds.size() == 1);

  // Read back (relative to the experiment file's folder), written again: the same file.
  CHECK(splits(toml, dir / "again.csv", "--set cv.splits=folds.csv") == text);
  // The same for a shuffled holdout split.
  const std::string holdout = "--set cv.mode=holdout --set cv.holdout_order=random";
  const std::string parts = splits(toml, dir / "holdout.csv", holdout);
  CHECK_THAT(parts, Contains(",train\n") && Contains(",val\n") && Contains(",test\n"));
  CHECK(splits(toml, dir / "holdout_again.csv", holdout + " --set cv.splits=holdout.csv") == parts);

  // Trained on the file: the folds of the seed, and (same training seed) the same numbers.
  const RunInfo from_seed = read_run(train(toml, dir / "seed").string(), LoadWeights::No);
  const fs::path file_run = train(toml, dir / "file", "--set cv.splits=folds.csv");
  const RunInfo from_file = read_run(file_run.string(), LoadWeights::No);
  check_same_folds(from_seed, from_file);
  for (std::size_t k = 0; k < from_seed.folds.size(); ++k) {
    REQUIRE(from_seed.folds[k].history.size() == from_file.folds[k].history.size());
    for (std::size_t e = 0; e < from_seed.folds[k].history.size(); ++e) {
      CHECK(from_seed.folds[k].history[e].val_loss == from_file.folds[k].history[e].val_loss);
      CHECK(from_seed.folds[k].history[e].metrics == from_file.folds[k].history[e].metrics);
    }
  }
  CHECK(from_file.meta.config_hash != from_seed.meta.config_hash);  // another configuration
  CHECK_THAT(from_file.config_toml, Contains("\nsplits = \"folds.csv\"\n"));

  // --resume re-reads the file: unchanged, nothing is left to do; edited since (two patients
  // of different folds swapped, a valid split of its own), the recorded folds no longer
  // hold and the resume is refused rather than mixing two splits.
  std::string log;
  CHECK(run_chestlab("run --resume " + shell_quote(file_run.string()) + " --quiet", log) == 0);
  std::string a, b;
  for (const SplitRow& row : rows) {
    if (a.empty()) a = row.group;
    if (b.empty() && row.fold != rows.front().fold) b = row.group;
  }
  write_text(dir / "folds.csv", swap_patients(text, a, b));
  CHECK(run_chestlab("run --resume " + shell_quote(file_run.string()) + " --quiet", log) == 3);
  CHECK_THAT(log, Contains("folds made now differ") && Contains("the split file " + (dir / "folds.csv").string()) &&
                      Contains("changed since the run started"));
}

TEST_CASE("splits: a split file the dataset contradicts is refused before anything trains", "[splits][e2e]") {
  const fs::path dir = scratch_dir("splits_refused");
  const fs::path toml = write_experiment(dir);
  const std::string text = splits(toml, dir / "folds.csv");
  const std::vector<SplitRow> rows = parse_split_rows(text, "folds.csv");
  const fs::path bad = dir / "bad.csv";
  // `chestlab run` of the experiment on the split file `file`, into dir/out.
  const auto run_on = [&](const std::string& file, const std::string& sets = "") {
    return "run " + shell_quote(toml.string()) + " --output " + shell_quote((dir / "out").string()) +
           " --quiet --set cv.splits=" + file + sets;
  };
  std::string log;

  // A patient's first image moved to another fold: the patient spans two folds.
  const SplitRow* first_of_shared = nullptr;
  for (const SplitRow& row : rows)
    for (const SplitRow& other : rows)
      if (!first_of_shared && &row != &other && row.group == other.group) first_of_shared = &other;
  REQUIRE(first_of_shared);
  write_text(bad, with_fold(text, first_of_shared->id, static_cast<int>((first_of_shared->fold + 1) % 3)));
  CHECK(run_chestlab(run_on("bad.csv"), log) == 3);
  CHECK_THAT(log, Contains("data error: " + bad.string() + ": line ") &&
                      Contains("the dataset's group (patient) \"" + first_of_shared->group + "\" spans fold"));
  CHECK(run_files(dir / "out").empty());  // refused before the run file was made

  // An unknown sample and a missing one, reported together; validate checks it the same way.
  std::string renamed = text;
  renamed.replace(renamed.find("\n" + rows[3].id + ",") + 1, rows[3].id.size(), "nobody");
  write_text(bad, renamed);
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.splits=bad.csv", log) == 3);
  CHECK_THAT(log, Contains("line 5: sample \"nobody\" is not in the dataset") &&
                      Contains("1 of the dataset's 24 samples have no row (each needs one): \"" + rows[3].id + "\""));

  // A fold the [cv] settings do not have.
  CHECK(run_chestlab(run_on("folds.csv", " --set cv.folds=2"), log) == 3);
  CHECK_THAT(log, Contains("is out of range: [cv] folds = 2 numbers the folds 0 to 1"));
  CHECK(run_chestlab(run_on("missing.csv"), log) == 3);
  CHECK_THAT(log, Contains((dir / "missing.csv").string() + ": cannot open the split file"));
  CHECK(run_files(dir / "out").empty());

  // Usage errors.
  CHECK(run_chestlab("splits " + shell_quote(toml.string()), log) == 2);
  CHECK_THAT(log, Contains("--out FILE.csv is required"));
  CHECK(run_chestlab("splits --out x.csv", log) == 2);
}

TEST_CASE("seeds: [train] seed changes the training and not the folds; [cv] seed the folds", "[seeds][e2e]") {
  const fs::path dir = scratch_dir("splits_seeds");
  const fs::path toml = write_experiment(dir);
  const RunInfo base = read_run(train(toml, dir / "base").string(), LoadWeights::No);
  const RunInfo other_training = read_run(train(toml, dir / "train8", "--set train.seed=8").string(), LoadWeights::No);
  check_same_folds(base, other_training);
  REQUIRE(base.folds.size() == 3);
  bool numbers_differ = false;
  for (std::size_t k = 0; k < 3; ++k)
    numbers_differ =
        numbers_differ || base.folds[k].history[0].train_loss != other_training.folds[k].history[0].train_loss;
  CHECK(numbers_differ);
  // Recorded: which seed made the folds and which trained, for resume and rerun.
  CHECK_THAT(other_training.config_toml, Contains("\n[cv]\nmode = \"kfold\"\nfolds = 3\nrepeats = 1\nstratify = true\nseed = 7\n"));
  CHECK_THAT(other_training.config_toml, Contains("\nseed = 8\n"));
  CHECK(other_training.meta.config_hash != base.meta.config_hash);

  // Without training: another fold seed, other folds; the fold seed pinned while the
  // experiment seed moves (unstratified, since the synthetic labels follow the experiment
  // seed), the same folds.
  const std::string folds = splits(toml, dir / "base.csv");
  CHECK(folds_of(splits(toml, dir / "cv9.csv", "--set cv.seed=9")) != folds_of(folds));
  const std::string unstratified = splits(toml, dir / "unstratified.csv", "--set cv.stratify=false");
  CHECK(folds_of(splits(toml, dir / "moved.csv", "--set cv.stratify=false --set experiment.seed=8 --set cv.seed=7")) ==
        folds_of(unstratified));
  CHECK(folds_of(splits(toml, dir / "moved_all.csv", "--set cv.stratify=false --set experiment.seed=8")) !=
        folds_of(unstratified));
}

TEST_CASE("seeds: files that set neither seed keep their hashes and run ids", "[seeds][e2e]") {
  // The values these files had before [cv] seed and [train] seed existed.
  std::string log;
  REQUIRE(run_chestlab("validate " + shell_quote((source_dir() / "tests/data/tiny.toml").string()), log) == 0);
  CHECK_THAT(log, Contains("configuration: ok (hash 304adcb85501)"));
  const fs::path out = scratch_dir("splits_ids");
  REQUIRE(run_chestlab("sweep " + shell_quote((source_dir() / "tests/data/tiny_sweep.toml").string()) +
                       " --dry-run --output " + shell_quote(out.string()),
                   log) == 0);
  CHECK_THAT(log, Contains("01700ece35cd") && Contains("371dc8c60e5b"));
}

TEST_CASE("repeats: R fold assignments, repeat 0 the folds of one; trained, recorded and compared per repeat",
          "[repeats][e2e]") {
  const fs::path dir = scratch_dir("splits_repeats");
  const fs::path toml = write_experiment(dir);
  const std::string once = splits(toml, dir / "once.csv");
  const std::string twice = splits(toml, dir / "twice.csv", "--set cv.repeats=2");
  const std::vector<SplitRow> rows = parse_split_rows(twice, "twice.csv");
  REQUIRE(rows.size() == 48);
  // Repeat 0 is the assignment without repeats; repeat 1 another one, patients kept whole.
  std::map<std::string, std::string> repeat0, repeat1;
  std::map<std::string, std::set<std::int64_t>> folds_of_patient;
  for (const SplitRow& row : rows) {
    (row.repeat == 0 ? repeat0 : repeat1)[row.id] = std::to_string(row.fold);
    if (row.repeat == 1) folds_of_patient[row.group].insert(row.fold);
  }
  CHECK(repeat0 == folds_of(once));
  CHECK(repeat1.size() == 24);
  CHECK(repeat1 != repeat0);
  CHECK(folds_of_patient.size() == 10);
  for (const auto& [patient, folds] : folds_of_patient) CHECK(folds.size() == 1);
  // The file reads back to itself; read with one repeat, its repeat 1 is refused.
  CHECK(splits(toml, dir / "again.csv", "--set cv.repeats=2 --set cv.splits=twice.csv") == twice);
  std::string log;
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.splits=twice.csv", log) == 3);
  CHECK_THAT(log, Contains("repeat 1 is out of range: [cv] repeats = 1"));

  // Trained: 2 x 3 fold models, repeat 0's equal to the run without repeats.
  const RunInfo single = read_run(train(toml, dir / "single", "--set train.epochs=1").string(), LoadWeights::No);
  const fs::path repeated_path = train(toml, dir / "repeated", "--set train.epochs=1 --set cv.repeats=2");
  const RunInfo repeated = read_run(repeated_path.string(), LoadWeights::No);
  REQUIRE(repeated.folds.size() == 6);
  CHECK(repeated.meta.folds_per_repeat == 3);
  CHECK(single.meta.folds_per_repeat == 0);
  for (std::size_t k = 0; k < 6; ++k) {
    INFO("fold model " << k);
    CHECK(repeated.folds[k].index == static_cast<int>(k));
    CHECK(repeated.folds[k].repeat == static_cast<int>(k / 3));
    if (k < 3) {
      CHECK(repeated.folds[k].val_ids == single.folds[k].val_ids);
      CHECK(repeated.folds[k].history.at(0).train_loss == single.folds[k].history.at(0).train_loss);
    }
  }
  std::set<std::string> validated;
  for (std::size_t k = 3; k < 6; ++k) validated.insert(repeated.folds[k].val_ids.begin(), repeated.folds[k].val_ids.end());
  CHECK(validated.size() == 24);  // repeat 1 validates every image once
  CHECK(repeated.meta.config_hash != single.meta.config_hash);

  // compare: a mean ± std column per repeat beside the mean over all six fold models.
  REQUIRE(run_chestlab("compare " + shell_quote(repeated_path.parent_path().string()) + " --format csv", log) == 0);
  CHECK_THAT(log, Contains("fold_5,repeat_0_mean,repeat_0_std,repeat_1_mean,repeat_1_std,mean,std,n_folds"));
  double sum1 = 0;
  for (std::size_t k = 3; k < 6; ++k) sum1 += *repeated.folds[k].best_metric("mean_iou");
  CHECK_THAT(log, Contains(fmt::format(",{:.4f},", sum1 / 3)));
  REQUIRE(run_chestlab("compare " + shell_quote(repeated_path.parent_path().string()), log) == 0);
  CHECK_THAT(log, Contains("repeat 0") && Contains("repeat 1"));
  REQUIRE(run_chestlab("compare " + shell_quote((dir / "single" / "splits").string()), log) == 0);
  CHECK_THAT(log, !Contains("repeat 0"));
}

TEST_CASE("repeats: refused with holdout, fold numbers past folds x repeats; repeats = 1 keeps run ids",
          "[repeats]") {
  const fs::path dir = scratch_dir("splits_repeats_refused");
  const fs::path toml = write_experiment(dir);
  std::string log;
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.repeats=2 --set cv.mode=holdout", log) ==
        2);
  CHECK_THAT(log, Contains("cv.repeats: repeats = 2 needs mode = \"kfold\""));
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.repeats=2 --set cv.run_folds=[6]", log) ==
        2);
  CHECK_THAT(log, Contains("fold 6 does not exist: fold models are numbered 0 to 5 (cv.folds = 3 x cv.repeats = 2)"));
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.repeats=0", log) == 2);
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.folds=5000 --set cv.repeats=3", log) == 2);
  CHECK_THAT(log, Contains("folds x repeats = 5000 x 3 is more than 10000 fold models"));
  // 6 fold models may all be listed.
  CHECK(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.repeats=2 --set cv.run_folds=[5]", log) ==
        0);
  CHECK_THAT(log, Contains("6 fold plan(s)"));
  // repeats = 1, written or not, is the same experiment.
  REQUIRE(run_chestlab("validate " + shell_quote(toml.string()), log) == 0);
  const std::string hash = log.substr(log.find("(hash "), 18);
  REQUIRE(run_chestlab("validate " + shell_quote(toml.string()) + " --set cv.repeats=1", log) == 0);
  CHECK_THAT(log, Contains(hash));
}

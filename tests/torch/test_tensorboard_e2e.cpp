// TensorBoard event files end to end: a quickstart run's files read back the way TensorBoard
// reads them (tests/python/read_tfevents.py: both CRCs of every record, every event parsed
// with Python's protobuf) hold exactly the run file's history; a run killed with kill -9 and
// resumed has no (tag, step) twice; tensorboard does not change sweep run ids.
#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "chestlab/engine/runfile.h"
#include "chestlab/engine/tensorboard.h"
#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

int run_chestlab(const std::string& args, std::string* out = nullptr) {
  return run_command(shell_quote(chestlab_exe()) + " " + args, out);
}

struct ScalarSeen {
  std::string tag;
  std::int64_t step = 0;
  double value = 0;
  bool operator==(const ScalarSeen& o) const {
    return tag == o.tag && step == o.step && (value == o.value || (std::isnan(value) && std::isnan(o.value)));
  }
};

// What read_tfevents.py printed about a run's event folder.
struct EventsRead {
  int rc = -1;
  std::string output;
  std::map<std::string, std::vector<ScalarSeen>> scalars;  // by fold folder ("fold0")
  std::map<std::string, int> files;                        // by fold folder
  std::vector<std::string> problems;                       // "problem" and "duplicate" lines
};

// False when /usr/bin/python3 cannot import google.protobuf (python3-protobuf).
bool python_has_protobuf() { return run_command("/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null") == 0; }

EventsRead read_events(const fs::path& root) {
  EventsRead r;
  const std::string script = (source_dir() / "tests" / "python" / "read_tfevents.py").string();
  r.rc = run_command("/usr/bin/python3 " + shell_quote(script) + " " + shell_quote((binary_dir() / "python").string()) +
                         " " + shell_quote(root.string()),
                     &r.output);
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string item; std::getline(fields, item, '\t');) f.push_back(item);
    if (f.empty()) continue;
    if (f[0] == "scalar" && f.size() == 6)
      r.scalars[f[1]].push_back({f[2], std::stoll(f[3]), std::strtod(f[4].c_str(), nullptr)});
    else if (f[0] == "file" && f.size() == 5)
      ++r.files[f[1]];
    else if (f[0] == "problem" || f[0] == "duplicate")
      r.problems.push_back(line);
  }
  return r;
}

// The value at (tag, step); NaN when absent (fails the comparison below). Counts it in `n`.
double value_at(const std::vector<ScalarSeen>& seen, const std::string& tag, std::int64_t step, int& n) {
  double v = std::nan("");
  n = 0;
  for (const ScalarSeen& s : seen)
    if (s.tag == tag && s.step == step) {
      v = s.value;
      ++n;
    }
  return v;
}

bool same_float(double from_file, double recorded) {
  const float want = static_cast<float>(recorded);
  if (std::isnan(want)) return std::isnan(from_file);
  return static_cast<float>(from_file) == want;  // simple_value is a float: exactly the recorded value, rounded
}

// Every epoch of every fold's history is in the fold's folder exactly once per tag, with the
// recorded value; `live` epochs also have the throughput tags.
void check_epochs_match(const RunInfo& run, const EventsRead& events, bool throughput) {
  for (const FoldInfo& fold : run.folds) {
    const std::string name = "fold" + std::to_string(fold.index);
    INFO(name);
    REQUIRE(events.scalars.count(name));
    const auto& seen = events.scalars.at(name);
    std::size_t epoch_values = 0;
    for (const ScalarSeen& s : seen) epoch_values += s.tag.rfind("batch/", 0) == 0 ? 0 : 1;
    const std::size_t tags_per_epoch = 3 + fold.metric_names.size() + (throughput ? 2 : 0);
    CHECK(epoch_values == fold.history.size() * tags_per_epoch);  // nothing else, nothing twice
    for (const HistoryRow& row : fold.history) {
      INFO("epoch " << row.epoch);
      std::vector<std::pair<std::string, double>> expected = {
          {"train/loss", row.train_loss}, {"val/loss", row.val_loss}, {"train/lr", row.lr}};
      for (std::size_t m = 0; m < fold.metric_names.size(); ++m)
        expected.push_back({"val/" + fold.metric_names[m], row.metrics[m]});
      for (const auto& [tag, recorded] : expected) {
        INFO(tag);
        int n = 0;
        const double v = value_at(seen, tag, row.epoch, n);
        CHECK(n == 1);
        CHECK(same_float(v, recorded));
      }
      if (throughput) {
        int n = 0;
        CHECK(value_at(seen, "train/images_per_second", row.epoch, n) > 0);
        CHECK(n == 1);
        const double wait = value_at(seen, "train/data_wait_fraction", row.epoch, n);
        CHECK(n == 1);
        CHECK((wait >= 0 && wait <= 1));
      }
    }
  }
}

std::set<std::int64_t> batch_steps(const EventsRead& events, const std::string& fold) {
  std::set<std::int64_t> steps;
  if (!events.scalars.count(fold)) return steps;
  for (const ScalarSeen& s : events.scalars.at(fold))
    if (s.tag == "batch/train_loss") steps.insert(s.step);
  return steps;
}

std::int64_t batches_per_epoch(const FoldInfo& fold, std::int64_t batch_size) {
  return (static_cast<std::int64_t>(fold.train_ids.size()) + batch_size - 1) / batch_size;
}

std::size_t epochs_recorded(const fs::path& file) {
  try {
    std::size_t n = 0;
    for (const FoldInfo& f : read_run(file.string(), LoadWeights::No).folds) n += f.history.size();
    return n;
  } catch (...) {
    return 0;  // not created yet
  }
}

// Waits until the run file under `dir` holds at least `epochs` epochs in all (false: the
// process ended first), then kills the process with SIGKILL after a random 0-400 ms, so that
// the kill lands at a random point of the next epoch: in a batch, in the run file's
// transaction, between it and the epoch's event. Returns the run file.
fs::path kill_after_epochs(int pid, const fs::path& dir, std::size_t epochs, std::mt19937& rng) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  fs::path file;
  for (;;) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    auto files = run_files(dir);
    if (!files.empty()) file = files.front();
    if (!file.empty() && epochs_recorded(file) >= epochs) break;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return file;  // finished (or failed) before
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // A random moment within the next epoch or so: tiny.toml's epochs take about 30 ms on a quiet
  // machine, so a longer delay (it was up to 400 ms) could let the whole fold finish first, and
  // the kill then fell between folds, where it tests nothing the test means to.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 25)(rng)));
  kill(pid, SIGKILL);
  wait_process(pid);
  return file;
}

}  // namespace

TEST_CASE("a quickstart run's event files read back as TensorBoard reads them, equal to its history",
          "[e2e][tensorboard]") {
  if (!python_has_protobuf()) {
    WARN("SKIPPED: /usr/bin/python3 cannot import google.protobuf (install python3-protobuf)");
    return;
  }
  const fs::path out = scratch_dir("tb_quickstart");
  const std::string quickstart = (source_dir() / "experiments" / "quickstart.toml").string();
  std::string log;
  INFO(log);
  REQUIRE(run_chestlab("run " + shell_quote(quickstart) +
                           " --tensorboard --set train.epochs=3 --set dataset.count=60 --set train.threads=2"
                           " --set train.tensorboard_every=2 --quiet --output " + shell_quote(out.string()),
                       &log) == 0);
  const RunInfo run = read_run(only_run_file(out).string(), LoadWeights::No);
  CHECK(run.config_toml.find("tensorboard = true") != std::string::npos);  // recorded: a resume goes on
  const fs::path root = out / "quickstart" / "tb" / run.meta.run_id;
  REQUIRE(fs::is_directory(root));
  const EventsRead events = read_events(root);
  INFO(events.output);
  REQUIRE(events.rc == 0);
  CHECK(events.problems.empty());
  REQUIRE(run.folds.size() == 3);
  check_epochs_match(run, events, /*throughput=*/true);
  for (const FoldInfo& fold : run.folds) {
    const std::string name = "fold" + std::to_string(fold.index);
    INFO(name);
    CHECK(events.files.at(name) == 1);  // one process, one file
    // The running training loss every 2nd batch of the fold, at its global batch index.
    const std::int64_t batches = batches_per_epoch(fold, 16) * 3;
    std::set<std::int64_t> expected;
    for (std::int64_t g = 0; g < batches; ++g)
      if ((g + 1) % 2 == 0) expected.insert(g);
    CHECK(batch_steps(events, name) == expected);
    for (const ScalarSeen& s : events.scalars.at(name))
      if (s.tag == "batch/train_loss") CHECK(s.value > 0);
  }
}

TEST_CASE("a run killed with kill -9 and resumed has every (tag, step) once, equal to its history",
          "[e2e][tensorboard][crash]") {
  if (!python_has_protobuf()) {
    WARN("SKIPPED: /usr/bin/python3 cannot import google.protobuf (install python3-protobuf)");
    return;
  }
  const std::string tiny = (source_dir() / "tests" / "data" / "tiny.toml").string();
  std::mt19937 rng(20240611);
  for (int attempt = 0; attempt < 2; ++attempt) {
    INFO("attempt " << attempt);
    const fs::path dir = scratch_dir("tb_kill_" + std::to_string(attempt));
    const std::vector<std::string> start = {chestlab_exe(), "run", tiny, "--tensorboard", "--set", "train.epochs=8",
                                            "--set", "train.tensorboard_every=1", "--quiet", "--output", dir.string()};
    int pid = spawn_process(start, (dir / "log0.txt").string());
    REQUIRE(pid > 0);
    const fs::path file = kill_after_epochs(pid, dir, 1, rng);
    REQUIRE_FALSE(file.empty());

    // Resumed, and killed again an epoch or more further on.
    const std::size_t recorded = epochs_recorded(file);
    INFO("killed after " << recorded << " epoch(s) in all");
    pid = spawn_process({chestlab_exe(), "run", "--resume", file.string(), "--quiet"}, (dir / "log1.txt").string());
    REQUIRE(pid > 0);
    kill_after_epochs(pid, dir, recorded + 1 + static_cast<std::size_t>(attempt), rng);

    // A torn record at the end of the newest file, as a writer killed mid-write (or a full
    // disk) leaves it.
    const RunInfo killed = read_run(file.string(), LoadWeights::No);
    const fs::path root = dir / "tiny" / "tb" / killed.meta.run_id;
    std::string newest;
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (tensorboard::is_event_file_name(entry.path().filename().string()) &&
          (newest.empty() || entry.path().filename().string() >= fs::path(newest).filename().string()))
        newest = entry.path().string();
    REQUIRE_FALSE(newest.empty());
    std::ofstream(newest, std::ios::binary | std::ios::app) << tensorboard::frame_record("torn away").substr(0, 17);

    std::string log;
    {
      INFO(log);
      REQUIRE(run_chestlab("run --resume " + shell_quote(file.string()) + " --quiet", &log) == 0);
    }
    const RunInfo run = read_run(file.string(), LoadWeights::No);
    REQUIRE(run.status == RunStatus::Complete);
    const EventsRead events = read_events(root);
    INFO(events.output);
    CHECK(events.rc == 0);
    CHECK(events.problems.empty());  // no duplicate (tag, step), no damaged record left
    // More than one process wrote events: the kills landed before the end.
    int files = 0;
    for (const auto& [fold, n] : events.files) files += n;
    CHECK(files > static_cast<int>(run.folds.size()));
    // Epochs of a killed process may have lost their throughput numbers (not in the run
    // file); every recorded number is there once.
    for (const FoldInfo& fold : run.folds) {
      const std::string name = "fold" + std::to_string(fold.index);
      INFO(name);
      REQUIRE(fold.history.size() == 8);
      const auto& seen = events.scalars.at(name);
      for (const HistoryRow& row : fold.history)
        for (const auto& [tag, recorded] : std::vector<std::pair<std::string, double>>{
                 {"train/loss", row.train_loss}, {"val/loss", row.val_loss}, {"train/lr", row.lr},
                 {"val/mean_iou", row.metrics[0]}, {"val/pixel_accuracy", row.metrics[1]}}) {
          INFO(tag << " epoch " << row.epoch);
          int n = 0;
          CHECK(same_float(value_at(seen, tag, row.epoch, n), recorded));
          CHECK(n == 1);
        }
      for (const ScalarSeen& s : seen)
        if (s.tag.rfind("batch/", 0) != 0) CHECK(s.step < 8);
      // Every batch of the fold once: those of an epoch lost to a kill were dropped and
      // written again when the epoch was trained again.
      std::set<std::int64_t> all;
      for (std::int64_t g = 0; g < batches_per_epoch(fold, 8) * 8; ++g) all.insert(g);
      CHECK(batch_steps(events, name) == all);
    }
  }
}

TEST_CASE("resuming a finished run with --tensorboard writes the events of its history", "[e2e][tensorboard]") {
  if (!python_has_protobuf()) {
    WARN("SKIPPED: /usr/bin/python3 cannot import google.protobuf (install python3-protobuf)");
    return;
  }
  const fs::path out = scratch_dir("tb_after");
  const std::string tiny = (source_dir() / "tests" / "data" / "tiny.toml").string();
  REQUIRE(run_chestlab("run " + shell_quote(tiny) + " --quiet --output " + shell_quote(out.string())) == 0);
  const fs::path file = only_run_file(out);
  const RunInfo run = read_run(file.string(), LoadWeights::No);
  const fs::path root = out / "tiny" / "tb" / run.meta.run_id;
  CHECK_FALSE(fs::exists(root));  // off by default
  REQUIRE(run_chestlab("run --resume " + shell_quote(file.string()) + " --tensorboard --quiet") == 0);
  const EventsRead events = read_events(root);
  INFO(events.output);
  REQUIRE(events.rc == 0);
  check_epochs_match(run, events, /*throughput=*/false);  // the run file has no throughput
  // Twice: nothing is written twice.
  REQUIRE(run_chestlab("run --resume " + shell_quote(file.string()) + " --tensorboard --quiet") == 0);
  const EventsRead again = read_events(root);
  CHECK(again.rc == 0);
  CHECK((again.scalars == events.scalars));
}

TEST_CASE("tensorboard changes no sweep run id", "[e2e][tensorboard][sweep]") {
  const fs::path out = scratch_dir("tb_sweep_ids");
  const std::string sweep = (source_dir() / "tests" / "data" / "tiny_sweep.toml").string();
  for (const std::string extra : {"", " --tensorboard", " --set train.tensorboard=true --set train.tensorboard_every=3"}) {
    INFO(extra);
    std::string listing;
    REQUIRE(run_chestlab("sweep " + shell_quote(sweep) + " --dry-run --output " + shell_quote(out.string()) + extra,
                         &listing) == 0);
    INFO(listing);
    // The ids these runs have had since before event files existed.
    CHECK(listing.find("01700ece35cd") != std::string::npos);
    CHECK(listing.find("371dc8c60e5b") != std::string::npos);
  }
}

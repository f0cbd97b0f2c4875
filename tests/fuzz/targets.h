// The fuzz targets: every reader of a file a user hands chestlab, with its seed inputs and
// what counts as a proper answer. Shared by the CTest tests (test_fuzz.cpp) and the campaign
// program (chestlab_fuzz.cpp). LibTorch-free; the run-file-by-CLI target runs the chestlab
// program as a subprocess.
//
// Each mutant is either read or refused with the reader's documented error type (DataError
// for images, tables and run files; ConfigError for experiment files) and a reason; through
// the CLI, refused means exit 2 or 3 with an "error:"/"data error:" message. Anything else is
// a crash: a signal, an undocumented exception type, exit 1 or another code. A mutant that
// does not finish within the target's time limit is a hang. In-process targets run every
// mutant in a forked child, so a crash is counted (and reported) instead of ending the
// campaign.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mutate.h"

namespace chestlab::fuzz {

enum class Verdict { Read, Refused, Crash, Hang };
const char* to_string(Verdict v);

struct Outcome {
  Verdict verdict = Verdict::Read;
  std::string detail;  // the refusal's reason, or what crashed
};

struct Failure {
  std::uint64_t iteration = 0;
  std::string seed_name;
  std::string edits;
  Outcome outcome;
  std::string saved;  // where the input was saved, if it was
};

struct Counts {
  std::string target;
  std::uint64_t inputs = 0, read = 0, refused = 0, crashes = 0, hangs = 0;
  double seconds = 0;
  std::vector<Failure> failures;  // crashes and hangs, the first ones in full
};

// Where the targets find their inputs and write their scratch files.
struct Environment {
  std::filesystem::path work_dir;         // scratch (created; mutants are written here)
  std::filesystem::path source_dir;       // the project (tests/data/tiny.toml)
  std::optional<std::filesystem::path> shared_data;  // ../shared/data, when present
  std::string chestlab_exe;               // for the runfile-cli target
  std::filesystem::path save_dir;         // non-empty: crashing inputs are copied here
  bool verbose = false;                   // print every mutant's outcome
};

struct Target {
  std::string name;    // "dicom", "csv-labels", ..., "runfile-cli"
  std::string group;   // what --target selects: dicom | csv | toml | runfile
  std::string suffix;  // file name ending of the mutants
  double timeout_s = 10;
  std::vector<Seed> seeds;
  // Reads the input at `path`; returns Read or Refused, or Crash for an undocumented
  // exception. In-process targets run it in a forked child; runfile-cli runs it directly.
  std::function<Outcome(const std::string& path, std::uint64_t iteration)> read;
  bool in_process = true;
  // The unmutated seeds are checked with iterations 0 .. seed_checks - 1 (runfile-cli: once
  // per command).
  int seed_checks = 1;
};

// Every target, with its seeds (built in code; the shared DICOM files and RSNA tables join
// the seeds where ../shared/data is present). `groups` empty: all; runfile-cli only when
// `env.chestlab_exe` names a program (it first trains a tiny run, a few seconds).
std::vector<Target> make_targets(const Environment& env, const std::vector<std::string>& groups);

// Runs `read` on one input in a forked child with the target's time limit.
Outcome run_isolated(const Target& target, const std::string& path, std::uint64_t iteration);

// Runs iterations [first, first + count) of the target's mutants. Every seed is also checked
// unmutated when `check_seeds` (and must be read: a refusal there counts as a crash).
Counts run_campaign(const Target& target, const Environment& env, std::uint64_t seed, std::uint64_t first,
                    std::uint64_t count, bool check_seeds = true);

// The table of counts, one row per target, and the failures' details.
std::string format_table(const std::vector<Counts>& all);
std::string format_failures(const Counts& c, std::size_t at_most = 10);

}  // namespace chestlab::fuzz

// Mutation fuzzing of every reader of user files, deterministic and bounded (seconds per
// target): the DICOM reader, the RSNA tables (labels, class info, DICOM headers plain and
// gzip, submissions), experiment files and --set overrides, run files in process and run
// files given to compare, report, curves, run --resume, predict and export. Each mutant must be
// read or refused with the documented error (see targets.h). Longer campaigns:
// build/bin/chestlab_fuzz (docs/testing.md).
#include <catch2/catch.hpp>

#include <csignal>
#include <thread>

#include "chestlab/errors.h"
#include "mutate.h"
#include "support.h"
#include "targets.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::fuzz;

namespace {

constexpr std::uint64_t kSeed = 20261202;

fuzz::Environment environment(const std::string& name, bool with_cli = false) {
  fuzz::Environment env;
  env.work_dir = test::scratch_dir("fuzz_" + name);
  env.source_dir = test::source_dir();
  env.shared_data = test::shared_data();
  if (with_cli) env.chestlab_exe = test::chestlab_exe();
  return env;
}

// Runs the given number of mutants of each named target and checks the verdicts.
void fuzz_targets(const std::string& group, const std::vector<std::pair<std::string, std::uint64_t>>& runs,
                  bool with_cli = false) {
  const fuzz::Environment env = environment(group, with_cli);
  const std::vector<Target> targets = make_targets(env, {group});
  std::vector<Counts> all;
  for (const auto& [name, iterations] : runs) {
    auto t = std::find_if(targets.begin(), targets.end(), [&](const Target& x) { return x.name == name; });
    REQUIRE(t != targets.end());
    REQUIRE_FALSE(t->seeds.empty());
    all.push_back(run_campaign(*t, env, kSeed, 0, iterations));
  }
  const std::string table = format_table(all);
  WARN(table);  // the counts, in the test's output
  for (const Counts& c : all) {
    INFO(c.target << ":\n" << format_failures(c, 10));
    CHECK(c.crashes == 0);
    CHECK(c.hangs == 0);
    // The seeds and the mutator do their work: some mutants still read, some are refused.
    CHECK(c.read > 0);
    CHECK(c.refused > 0);
    CHECK(c.inputs == c.read + c.refused + c.crashes + c.hangs);
  }
}

}  // namespace

TEST_CASE("fuzz: the mutator is deterministic and edits every kind of input", "[fuzz]") {
  const std::vector<Seed> seeds = {{"bytes", std::string("\x00\x01\x02\x03 binary \xff", 13), {2, 4}, false},
                                   {"text", "a = 1\nb = \"x\"\n[c]\nd = [1, 2]\n", {}, true},
                                   {"empty", "", {}, false},
                                   {"one", "x", {}, true}};
  std::size_t changed = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const Mutant a = mutate(seeds, 7, "unit", i), b = mutate(seeds, 7, "unit", i);
    REQUIRE(a.data == b.data);
    REQUIRE(a.edits == b.edits);
    REQUIRE_FALSE(a.edits.empty());
    const auto seed = std::find_if(seeds.begin(), seeds.end(), [&](const Seed& s) { return s.name == a.seed_name; });
    REQUIRE(seed != seeds.end());
    changed += a.data != seed->data;
  }
  CHECK(changed > 1500);  // nearly every mutant differs from its seed
  CHECK(mutate(seeds, 7, "unit", 1).data != mutate(seeds, 8, "unit", 1).data);
  // Each kind of edit occurs.
  std::string all_edits;
  for (std::uint64_t i = 0; i < 2000; ++i) all_edits += mutate(seeds, 3, "kinds", i).edits + " ";
  for (const char* kind : {"flip@", "byte@", "length@", "zero@", "delete@", "copy@", "insert@", "truncate@",
                           "replace@", "delete-line", "repeat-line", "swap-lines"})
    CHECK(all_edits.find(kind) != std::string::npos);
}

TEST_CASE("fuzz: the harness tells read, refused, crash and hang apart", "[fuzz]") {
  const fuzz::Environment env = environment("harness");
  Target t{"harness", "unit", ".bin", 2, {{"s", "x", {}, false}}, nullptr, true};
  const std::string path = (env.work_dir / "input.bin").string();
  t.read = [](const std::string&, std::uint64_t) { return Outcome{Verdict::Read, ""}; };
  CHECK(run_isolated(t, path, 0).verdict == Verdict::Read);
  t.read = [](const std::string& p, std::uint64_t) -> Outcome { return {Verdict::Refused, "reason for " + p}; };
  CHECK(run_isolated(t, path, 0).detail == "reason for " + path);
  t.read = [](const std::string&, std::uint64_t) -> Outcome {
    std::raise(SIGSEGV);
    return {};
  };
  const Outcome segv = run_isolated(t, path, 0);
  CHECK(segv.verdict == Verdict::Crash);
  CHECK_THAT(segv.detail, Catch::Contains("signal 11"));
  t.read = [](const std::string&, std::uint64_t) -> Outcome { std::abort(); };
  CHECK(run_isolated(t, path, 0).verdict == Verdict::Crash);
  t.read = [](const std::string&, std::uint64_t) -> Outcome { throw std::logic_error("escaped"); };
  CHECK(run_isolated(t, path, 0).verdict == Verdict::Crash);
  t.timeout_s = 0.5;
  t.read = [](const std::string&, std::uint64_t) -> Outcome {
    std::this_thread::sleep_for(std::chrono::seconds(30));
    return {};
  };
  CHECK(run_isolated(t, path, 0).verdict == Verdict::Hang);
  // A campaign counts the crash and names the mutant.
  t.timeout_s = 2;
  t.read = [](const std::string& p, std::uint64_t i) -> Outcome {
    if (i == 3) std::raise(SIGSEGV);
    return {Verdict::Read, p};
  };
  const Counts c = run_campaign(t, env, 1, 0, 5);
  CHECK(c.inputs == 6);  // the seed, then 5 mutants
  CHECK(c.read == 5);
  CHECK(c.crashes == 1);
  REQUIRE(c.failures.size() == 1);
  CHECK(c.failures[0].iteration == 3);
  // An unmutated seed must be read: refusing it is a failure too.
  t.read = [](const std::string&, std::uint64_t) -> Outcome { return {Verdict::Refused, "no"}; };
  CHECK(run_campaign(t, env, 1, 0, 0).crashes == 1);
}

TEST_CASE("fuzz: DICOM reader", "[fuzz][dicom]") {
  fuzz_targets("dicom", {{"dicom", 400}});
}

TEST_CASE("fuzz: RSNA label, class, header and submission tables, split files", "[fuzz][csv]") {
  fuzz_targets("csv", {{"csv-labels", 250}, {"csv-classes", 250}, {"csv-headers", 250}, {"csv-headers-gz", 250},
                      {"csv-submission", 250}, {"csv-splits", 250}});
}

TEST_CASE("fuzz: experiment files and --set overrides", "[fuzz][toml]") {
  fuzz_targets("toml", {{"toml", 400}, {"toml-set", 400}});
}

TEST_CASE("fuzz: run files read in process", "[fuzz][runfile]") {
  fuzz_targets("runfile", {{"runfile", 300}});
}

TEST_CASE("fuzz: damaged run files given to compare, report, curves, --resume, predict, export",
          "[fuzz][runfile][cli]") {
  if (!fs::exists(test::chestlab_exe())) {
    WARN("SKIPPED: no chestlab program at " << test::chestlab_exe());
    return;
  }
  // 4 mutants per command, 5 for predict (each run of the program takes a second or more: it
  // loads its plugins); every command also gets the unmutated files, which it must read.
  fuzz_targets("runfile", {{"runfile-cli", 20}, {"runfile-predict", 5}}, true);
}

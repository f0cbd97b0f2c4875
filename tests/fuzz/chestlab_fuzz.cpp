// chestlab_fuzz: longer mutation-fuzzing campaigns over chestlab's readers than CTest runs.
//
//   chestlab_fuzz --target dicom|csv|toml|runfile|all --iterations N --seed S [--first I]
//                 [--cli-iterations N] [--predict-iterations N]
//                 [--work DIR] [--save DIR] [--exe PATH] [--no-cli] [--verbose]
//
// Prints one row per target: inputs, read, refused, crashes, hangs (every unmutated seed is
// one of the inputs and must be read). Exit 0 when there was no crash and no hang, 1 when
// there was (the first ones are listed, and saved with --save), 2 for a usage error.
// The same (target, seed, iteration) gives the same mutant on any machine: a failure is
// reproduced with --seed S --first I --iterations 1 --verbose.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "targets.h"

namespace fs = std::filesystem;
using namespace chestlab::fuzz;

namespace {

int usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "chestlab_fuzz: " << problem << "\n";
  std::cerr << "usage: chestlab_fuzz --target dicom|csv|toml|runfile|all --iterations N --seed S [--first I]\n"
               "                     [--work DIR] [--save DIR] [--exe PATH] [--no-cli] [--verbose]\n"
               "  --iterations N  mutants per in-process target\n"
               "  --cli-iterations N      mutants for runfile-cli, each given to one of compare, report,\n"
               "                          curves, run --resume, export in turn (default N / 10)\n"
               "  --predict-iterations N  mutants of an RSNA run given to predict (default cli / 5)\n"
               "  --work DIR      scratch folder (default build/test_scratch/fuzz_campaign)\n"
               "  --save DIR      copy every crashing or hanging input there\n"
               "  --exe PATH      the chestlab program for runfile-cli (default: this build's)\n"
               "  --no-cli        skip runfile-cli (the run file given to the chestlab commands)\n";
  return 2;
}

bool parse_count(const std::string& text, std::uint64_t& out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 15) return false;
  out = std::stoull(text);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> groups;
  std::uint64_t iterations = 0, seed = 1, first = 0, cli_iterations = 0, predict_iterations = 0;
  bool have_iterations = false, have_cli_iterations = false, have_predict_iterations = false, no_cli = false;
  Environment env;
  env.work_dir = fs::path(CHESTLAB_FUZZ_BINARY_DIR) / "test_scratch" / "fuzz_campaign";
  env.source_dir = CHESTLAB_FUZZ_SOURCE_DIR;
  env.chestlab_exe = CHESTLAB_FUZZ_EXE;
  const char* shared = std::getenv("CHESTLAB_SHARED_DATA");
  const fs::path shared_dir = shared && *shared ? fs::path(shared) : fs::path(CHESTLAB_FUZZ_SHARED_DATA);
  if (fs::is_directory(shared_dir)) env.shared_data = shared_dir;

  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--help" || a == "-h") {
      usage("");
      return 0;
    } else if (a == "--target") {
      if (!value(v)) return usage("--target needs a value");
      if (v == "all") continue;
      if (v != "dicom" && v != "csv" && v != "toml" && v != "runfile")
        return usage("--target '" + v + "': allowed are dicom, csv, toml, runfile, all");
      groups.push_back(v);
    } else if (a == "--iterations") {
      if (!value(v) || !parse_count(v, iterations)) return usage("--iterations needs a count");
      have_iterations = true;
    } else if (a == "--cli-iterations") {
      if (!value(v) || !parse_count(v, cli_iterations)) return usage("--cli-iterations needs a count");
      have_cli_iterations = true;
    } else if (a == "--predict-iterations") {
      if (!value(v) || !parse_count(v, predict_iterations)) return usage("--predict-iterations needs a count");
      have_predict_iterations = true;
    } else if (a == "--seed") {
      if (!value(v) || !parse_count(v, seed)) return usage("--seed needs a non-negative integer");
    } else if (a == "--first") {
      if (!value(v) || !parse_count(v, first)) return usage("--first needs a non-negative integer");
    } else if (a == "--work") {
      if (!value(v)) return usage("--work needs a folder");
      env.work_dir = v;
    } else if (a == "--save") {
      if (!value(v)) return usage("--save needs a folder");
      env.save_dir = v;
    } else if (a == "--exe") {
      if (!value(v)) return usage("--exe needs a path");
      env.chestlab_exe = v;
    } else if (a == "--no-cli") {
      no_cli = true;
    } else if (a == "--verbose") {
      env.verbose = true;
    } else {
      return usage("unknown option '" + a + "'");
    }
  }
  if (!have_iterations) return usage("--iterations is required");
  // Absolute: the runs it trains resolve their data paths against the experiment's folder.
  env.work_dir = fs::absolute(env.work_dir);
  if (!env.save_dir.empty()) env.save_dir = fs::absolute(env.save_dir);
  if (!have_cli_iterations) cli_iterations = std::max<std::uint64_t>(1, iterations / 10);
  if (!have_predict_iterations) predict_iterations = std::max<std::uint64_t>(1, cli_iterations / 5);
  if (no_cli) env.chestlab_exe.clear();
  if (!env.chestlab_exe.empty() && !fs::exists(env.chestlab_exe)) {
    std::cerr << "chestlab_fuzz: no chestlab program at " << env.chestlab_exe
              << " (build it, give --exe, or --no-cli)\n";
    return 2;
  }

  std::vector<Target> targets;
  try {
    fs::create_directories(env.work_dir);
    targets = make_targets(env, groups);
  } catch (const std::exception& e) {
    std::cerr << "chestlab_fuzz: cannot prepare the seeds: " << e.what() << "\n";
    return 1;
  }
  std::cout << "seed " << seed << ", iterations " << first << ".." << first + iterations
            << (env.shared_data ? ", with the shared data" : ", without the shared data (built-in seeds only)")
            << "\n";
  std::vector<Counts> all;
  bool failed = false;
  for (const Target& t : targets) {
    const std::uint64_t n = t.name == "runfile-cli"       ? cli_iterations
                            : t.name == "runfile-predict" ? predict_iterations
                                                          : iterations;
    std::cout << "  " << t.name << ": " << t.seeds.size() << " seed(s), " << n << " mutant(s)..." << std::flush;
    Counts c = run_campaign(t, env, seed, first, n);
    std::cout << " " << c.crashes << " crash(es), " << c.hangs << " hang(s)\n";
    failed = failed || c.crashes || c.hangs;
    all.push_back(std::move(c));
  }
  std::cout << "\n" << format_table(all);
  for (const Counts& c : all)
    if (!c.failures.empty()) std::cout << "\n" << format_failures(c, 20);
  return failed ? 1 : 0;
}

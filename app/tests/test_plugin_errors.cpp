// An error raised inside plugin code reaches the user as a message that names the component
// and keeps the plugin's words, with the exit code of its class (2 configuration, 3 data,
// 1 anything else), never as a crash. The test plugin "throwing" (tests/plugins/throwing.cpp)
// throws where CHESTLAB_TEST_THROW=<kind>.<entry>=<what> says; every entry point the host
// calls is hit under validate, run, rerun, a sweep and predict, each kind of error at least
// once per command.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab::test;

namespace {

const std::vector<std::string> kWhats = {"config", "data", "plugin", "param", "c10", "std", "other"};

int expected_exit(const std::string& what) { return what == "config" ? 2 : what == "data" ? 3 : 1; }

// What of the plugin's own message must survive.
std::string expected_words(const std::string& where, const std::string& what) {
  if (what == "param") return "parameter 'undeclared_parameter' is not set";
  if (what == "other") return "not a std::exception";
  return fmt::format("injected {} error in {}", what, where);
}

std::string throwing_plugins() { return (fs::path(test_plugin_dir()) / "throwing").string(); }
std::string throwing_toml() { return (source_dir() / "tests" / "data" / "throwing.toml").string(); }

// `chestlab ARGS` with the throw injected (none when `injection` is empty).
int chestlab_with(const std::string& injection, const std::string& args, std::string* log) {
  const std::string env = injection.empty() ? "" : "CHESTLAB_TEST_THROW=" + shell_quote(injection) + " ";
  return run_command(env + shell_quote(chestlab_exe()) + " " + args, log);
}

// One command under one injection: the right exit code, the component and entry named, the
// plugin's words kept.
void check_reported(const std::string& where, const std::string& what, const std::string& args) {
  std::string log;
  const int status = chestlab_with(where + "=" + what, args, &log);
  INFO("CHESTLAB_TEST_THROW=" << where << "=" << what << " chestlab " << args << "\n" << log);
  CHECK(status == expected_exit(what));
  const std::string kind = where.substr(0, where.find('.'));
  CHECK_THAT(log, Catch::Contains(kind + " 'throwing'"));
  CHECK_THAT(log, Catch::Contains(expected_words(where, what)));
  CHECK_THAT(log, !Catch::Contains("terminate called"));
}

// Each entry point once, the kinds of error taken in turn (so each kind at two or more entry
// points; `shift` pairs them differently per command), then every kind at `all_kinds_at`
// when given.
void check_every_entry(const std::vector<std::string>& entries, const std::string& all_kinds_at,
                       const std::function<std::string(int)>& args_for, std::size_t shift = 0) {
  int n = 0;
  for (std::size_t i = 0; i < entries.size(); ++i, ++n)
    check_reported(entries[i], kWhats[(i + shift) % kWhats.size()], args_for(n));
  if (all_kinds_at.empty()) return;
  for (const std::string& what : kWhats) check_reported(all_kinds_at, what, args_for(n++));
}

// Entry points validate reaches: every factory, the dataset's reads, one batch through the
// model, the loss and the metrics.
const std::vector<std::string> kValidateEntries = {
    "dataset.factory", "dataset.size", "dataset.info", "dataset.get",    "model.factory", "model.forward",
    "model.predict",   "loss.factory", "loss.compute", "metric.factory", "metric.update", "scheduler.factory"};

// Training reaches these too.
std::vector<std::string> run_entries() {
  std::vector<std::string> all = kValidateEntries;
  for (const char* more : {"metric.reset", "metric.compute", "scheduler.lr", "scheduler.observe"}) all.push_back(more);
  return all;
}

}  // namespace

TEST_CASE("an image size the model cannot take is an error, not a crash", "[plugin_errors]") {
  const std::string quickstart = (source_dir() / "experiments" / "quickstart.toml").string();
  std::string log;
  const int status = run_command(
      shell_quote(chestlab_exe()) + " validate " + shell_quote(quickstart) + " --set dataset.image_size=63", &log);
  INFO(log);
  CHECK(status == 2);  // not killed by a signal (139 = SIGSEGV)
  CHECK_THAT(log, Catch::Contains("dataset.image_size") && Catch::Contains("nearest: 64"));
}

TEST_CASE("the throwing plugin works when nothing is injected", "[plugin_errors]") {
  const fs::path dir = scratch_dir("plugin_errors_clean");
  std::string log;
  CHECK(chestlab_with("",
                      "run " + shell_quote(throwing_toml()) + " --quiet --plugin-path " + throwing_plugins() +
                          " --output " + shell_quote(dir.string()),
                      &log) == 0);
  INFO(log);
}

TEST_CASE("plugin errors under validate name the component and keep their exit code", "[plugin_errors]") {
  const std::string args = "validate " + shell_quote(throwing_toml()) + " --plugin-path " + throwing_plugins();
  check_every_entry(kValidateEntries, "model.forward", [&](int) { return args; });
}

TEST_CASE("plugin errors under run name the component and keep their exit code", "[plugin_errors]") {
  const fs::path dir = scratch_dir("plugin_errors_run");
  check_every_entry(
      run_entries(), "",
      [&](int n) {
        return "run " + shell_quote(throwing_toml()) + " --quiet --plugin-path " + throwing_plugins() + " --output " +
               shell_quote((dir / std::to_string(n)).string());
      },
      3);
}

TEST_CASE("plugin errors under rerun and sweep name the component and keep their exit code", "[plugin_errors]") {
  const fs::path dir = scratch_dir("plugin_errors_rerun");
  std::string log;
  REQUIRE(chestlab_with("",
                        "run " + shell_quote(throwing_toml()) + " --quiet --plugin-path " + throwing_plugins() +
                            " --output " + shell_quote((dir / "original").string()),
                        &log) == 0);
  const fs::path run = only_run_file(dir / "original");
  SECTION("rerun") {
    check_every_entry(
        run_entries(), "",
        [&](int n) {
          return "rerun " + shell_quote(run.string()) + " --quiet --plugin-path " + throwing_plugins() + " --output " +
                 shell_quote((dir / ("rerun" + std::to_string(n))).string());
        },
        5);
  }
  SECTION("sweep") {
    // A sweep's runs are child processes: the child's message and exit class reach the parent.
    for (std::size_t i = 0; i < kWhats.size(); ++i) {
      const std::vector<std::string> at = {"model.forward", "dataset.get", "metric.compute", "scheduler.lr"};
      check_reported(at[i % at.size()], kWhats[i],
                     "sweep " + shell_quote(throwing_toml()) + " --quiet --plugin-path " + throwing_plugins() +
                         " --output " + shell_quote((dir / ("sweep" + std::to_string(i))).string()));
    }
  }
}

TEST_CASE("plugin errors under predict name the component and keep their exit code", "[plugin_errors][predict]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path dir = scratch_dir("plugin_errors_predict");
  const fs::path corpus = dir / "corpus";
  std::string log;
  REQUIRE(chestlab_with("",
                        "synth rsna --labels " + shell_quote((data / "rsna" / "stage_2_train_labels.csv").string()) +
                            " --class-info " +
                            shell_quote((data / "rsna" / "stage_2_detailed_class_info.csv").string()) +
                            " --limit 12 --seed 2 --out " + shell_quote(corpus.string()),
                        &log) == 0);
  // The RSNA dataset with the throwing model, so that predict runs plugin code.
  const fs::path toml = dir / "rsna_throwing.toml";
  {
    std::ofstream out(toml);
    out << fmt::format(R"([experiment]
name = "rsna_throwing"
seed = 5
[dataset]
plugin = "rsna_pneumonia"
labels = "{0}/stage_2_train_labels.csv"
class_info = "{0}/stage_2_detailed_class_info.csv"
headers = ""
images = "{0}"
image_size = 32
[model]
plugin = "throwing"
[loss]
plugin = "bce"
[[metrics]]
plugin = "rsna_map"
[train]
epochs = 1
batch_size = 4
workers = 0
[cv]
folds = 2
)",
                       corpus.string());
  }
  REQUIRE(chestlab_with("",
                        "run " + shell_quote(toml.string()) + " --quiet --plugin-path " + throwing_plugins() +
                            " --output " + shell_quote((dir / "results").string()),
                        &log) == 0);
  const fs::path run = only_run_file(dir / "results");
  const std::string args = "predict --run " + shell_quote(run.string()) + " --images " + shell_quote(corpus.string()) +
                           " --out " + shell_quote((dir / "submission.csv").string()) + " --quiet --plugin-path " +
                           throwing_plugins();
  CHECK(chestlab_with("", args, &log) == 0);
  check_every_entry({"model.factory", "model.predict"}, "model.forward", [&](int) { return args; });
}

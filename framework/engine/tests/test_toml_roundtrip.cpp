// What chestlab writes as TOML it reads back: random strings (every control character,
// quotes, backslashes, TOML syntax, non-ASCII UTF-8) in every string key of an experiment go
// through the resolved configuration (what `run --resume` and `rerun` re-read, stored in a
// run file), through `--set` (how `run --output` and sweep children pass values), and through
// the sweep manifest, and must come back unchanged. The writer keeps ordinary strings
// byte-identical, because config hashes (and so run ids) are made from that text.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "chestlab/engine/config.h"
#include "chestlab/engine/runfile.h"
#include "chestlab/engine/sweep.h"
#include "chestlab/errors.h"
#include "chestlab/params.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

// Pieces that break hand-made quoting: every control character (NUL included), quotes,
// backslashes and what looks like an escape, TOML syntax, multi-byte UTF-8 (2, 3 and 4 bytes,
// a byte-order mark, a line separator, a non-breaking space).
std::vector<std::string> pieces() {
  std::vector<std::string> out;
  for (int c = 0; c < 0x20; ++c) out.emplace_back(1, static_cast<char>(c));
  out.emplace_back("\x7f");
  for (const char* p : {"\"", "\\", "'", " ", "=", "#", "[", "]", "{", "}", ",", ".", "a", "Z", "7", "\\n",
                        "\\u0041", "'''", "\"\"\"", "\u00e9", "\u4e2d", "\U0001F600", "\xEF\xBB\xBF", "\u2028",
                        "\u00a0", "\u00ff"})
    out.emplace_back(p);
  return out;
}

// std::mt19937's sequence is fixed by the standard (its distributions are not): same strings
// on every machine.
struct RandomStrings {
  std::mt19937 rng{20261202};
  std::vector<std::string> alphabet = pieces();
  std::string next() {
    const std::size_t length = rng() % 25;
    std::string s;
    for (std::size_t i = 0; i < length; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  }
};

ComponentInfo component(Kind kind, std::string name, Schema params) {
  ComponentInfo info;
  info.kind = kind;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.params = std::move(params);
  return info;
}

// Components whose string parameters take anything, as a dataset's paths do.
class FreeTextCatalog : public SchemaCatalog {
 public:
  FreeTextCatalog() {
    entries_ = {component(Kind::Dataset, "data",
                          {param_required("root", ParamType::String, "image folder"),
                           param_strings("files", {}, "more files"), param_int("count", 10, "samples").at_least(1)}),
                component(Kind::Model, "net", {param_string("note", "", "free text")}),
                component(Kind::Loss, "bce", {}), component(Kind::Scheduler, "constant", {}),
                component(Kind::Metric, "iou", {}), component(Kind::Metric, "acc", {})};
  }
  const ComponentInfo* find(Kind kind, const std::string& name) const override {
    for (const ComponentInfo& c : entries_)
      if (c.kind == kind && c.name == name) return &c;
    return nullptr;
  }
  std::vector<std::string> names(Kind kind) const override {
    std::vector<std::string> out;
    for (const ComponentInfo& c : entries_)
      if (c.kind == kind) out.push_back(c.name);
    return out;
  }
  const Schema* augmentation(const std::string&) const override { return nullptr; }
  std::vector<std::string> augmentation_types() const override { return {}; }

 private:
  std::vector<ComponentInfo> entries_;
};

const FreeTextCatalog& catalog() {
  static const FreeTextCatalog instance;
  return instance;
}

// One value for every string key of the experiment that accepts any text.
struct Strings {
  std::string output, root, file_a, file_b, init, rename_from, rename_to, note, metric_a, metric_b;

  static Strings draw(RandomStrings& r) {
    Strings s{r.next(), r.next(), r.next(), r.next(), r.next(), r.next(), r.next(), r.next(), r.next(), r.next()};
    s.rename_from = "p" + s.rename_from;  // "from=to" needs a non-empty prefix
    s.metric_a = "a" + s.metric_a;        // metric names: non-empty (else the plugin's) and unique
    s.metric_b = "b" + s.metric_b;
    return s;
  }
};

// The experiment as toml++ writes it: independent of the writer under test.
std::string experiment_text(const Strings& s) {
  toml::table doc{
      {"experiment", toml::table{{"name", "roundtrip"}, {"output", s.output}}},
      {"dataset", toml::table{{"plugin", "data"}, {"root", s.root}, {"files", toml::array{s.file_a, s.file_b}}}},
      {"model", toml::table{{"plugin", "net"},
                            {"init", s.init},
                            {"init_rename", toml::array{s.rename_from + "=" + s.rename_to}},
                            {"note", s.note}}},
      {"loss", toml::table{{"plugin", "bce"}}},
      {"metrics", toml::array{toml::table{{"plugin", "iou"}, {"name", s.metric_a}},
                              toml::table{{"plugin", "acc"}, {"name", s.metric_b}}}},
  };
  std::ostringstream out;
  out << toml::toml_formatter(doc, toml::format_flags::none);  // escapes everything non-ASCII too
  return out.str();
}

// Every string the experiment was given, as the config holds it.
void require_strings(const ExperimentConfig& c, const Strings& s) {
  CHECK(c.output == s.output);
  CHECK(c.dataset.params.str("root") == s.root);
  CHECK(c.dataset.params.strings("files") == std::vector<std::string>{s.file_a, s.file_b});
  CHECK(c.model_init == s.init);
  CHECK(c.model_init_rename == std::vector<std::string>{s.rename_from + "=" + s.rename_to});
  CHECK(c.model.params.str("note") == s.note);
  REQUIRE(c.metrics.size() == 2);
  CHECK(c.metrics[0].name == s.metric_a);
  CHECK(c.metrics[1].name == s.metric_b);
}

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f || u == '\\' ? fmt::format("\\x{:02x}", u) : std::string(1, c);
  }
  return out;
}

const std::string kPlainBase =
    "[experiment]\nname = \"roundtrip\"\n[dataset]\nplugin = \"data\"\nroot = \"r\"\n"
    "[model]\nplugin = \"net\"\n[loss]\nplugin = \"bce\"\n"
    "[[metrics]]\nplugin = \"iou\"\n[[metrics]]\nplugin = \"acc\"\n";

}  // namespace

TEST_CASE("to_toml writes every string as TOML that reads back to it", "[toml_roundtrip]") {
  RandomStrings r;
  for (int i = 0; i < 3000; ++i) {
    const std::string s = r.next();
    INFO("string " << printable(s));
    const std::string text = "v = " + to_toml(ParamValue{s}) + "\nw = " + to_toml(ParamValue{std::vector<std::string>{s, s + "x"}}) + "\n";
    toml::table t;
    REQUIRE_NOTHROW(t = toml::parse(text));
    REQUIRE(t["v"].value<std::string>() == s);
    REQUIRE(t["w"][0].value<std::string>() == s);
    REQUIRE(t["w"][1].value<std::string>() == s + "x");
  }
}

TEST_CASE("to_toml keeps the text of strings that were written correctly before (config hashes)",
          "[toml_roundtrip]") {
  // What the earlier writer produced for these; resolved texts, hence hashes and run ids, of
  // existing experiments depend on it.
  CHECK(to_toml(ParamValue{std::string("results")}) == "\"results\"");
  CHECK(to_toml(ParamValue{std::string("../shared/data/lung-ct")}) == "\"../shared/data/lung-ct\"");
  CHECK(to_toml(ParamValue{std::string("a \"b\" c\\d")}) == "\"a \\\"b\\\" c\\\\d\"");
  CHECK(to_toml(ParamValue{std::string("line\nnext")}) == "\"line\\nnext\"");
  CHECK(to_toml(ParamValue{std::string("tab\there")}) == "\"tab\there\"");
  CHECK(to_toml(ParamValue{std::string("\u00e9\u4e2d\U0001F600")}) == "\"\u00e9\u4e2d\U0001F600\"");
  CHECK(to_toml(ParamValue{std::vector<std::string>{"module.=", ""}}) == "[\"module.=\", \"\"]");
  // The characters TOML refuses raw, which the earlier writer let through.
  CHECK(to_toml(ParamValue{std::string("\x01\b\f\r\x1f\x7f", 6)}) == "\"\\u0001\\b\\f\\r\\u001F\\u007F\"");
  CHECK(to_toml(ParamValue{std::string("a\0b", 3)}) == "\"a\\u0000b\"");
}

TEST_CASE("random strings in every string key survive the resolved configuration, a run file and resume",
          "[toml_roundtrip]") {
  const fs::path dir = test::scratch_dir("toml_roundtrip_config");
  RandomStrings r;
  for (int trial = 0; trial < 300; ++trial) {
    const Strings s = Strings::draw(r);
    const std::string text = experiment_text(s);
    INFO("trial " << trial << ", experiment:\n" << text);
    const ExperimentConfig given = parse_experiment(text, "in.toml", "/base", {}, catalog());
    require_strings(given, s);

    // What `run` records, and what `run --resume` and `rerun` parse again.
    const std::string resolved = given.resolved_toml();
    INFO("resolved:\n" << printable(resolved));
    REQUIRE_NOTHROW(toml::parse(resolved));
    std::string recorded = resolved;
    if (trial % 10 == 0) {  // also through HDF5, as the run file stores it (fsync: not every trial)
      const std::string path = (dir / fmt::format("r{}.h5", trial)).string();
      RunMeta meta;
      meta.experiment = given.name;
      meta.run_id = "r";
      meta.config_hash = given.hash();
      meta.monitor = given.monitor().name;
      RunFile::create(path, meta, resolved, Environment{});
      recorded = read_run(path, LoadWeights::No).config_toml;
      REQUIRE(recorded == resolved);
    }
    const ExperimentConfig again = parse_experiment(recorded, "r.h5:/config", "/base", {}, catalog());
    require_strings(again, s);
    CHECK(again.resolved_toml() == resolved);
    CHECK(again.hash() == given.hash());

    // `--set` with the value quoted as `run --output` and `sweep --output` quote it.
    const ExperimentConfig overridden = parse_experiment(
        kPlainBase, "base.toml", "/base",
        {"experiment.output=" + to_toml(ParamValue{s.output}), "dataset.root=" + to_toml(ParamValue{s.root}),
         "dataset.files=" + to_toml(ParamValue{std::vector<std::string>{s.file_a, s.file_b}}),
         "model.init=" + to_toml(ParamValue{s.init}),
         "model.init_rename=" + to_toml(ParamValue{std::vector<std::string>{s.rename_from + "=" + s.rename_to}}),
         "model.note=" + to_toml(ParamValue{s.note}), "metrics.0.name=" + to_toml(ParamValue{s.metric_a}),
         "metrics.1.name=" + to_toml(ParamValue{s.metric_b})},
        catalog());
    require_strings(overridden, s);
    CHECK(overridden.hash() == given.hash());
  }
}

TEST_CASE("random strings swept and written in the manifest read back unchanged", "[toml_roundtrip]") {
  const fs::path dir = test::scratch_dir("toml_roundtrip_sweep");
  RandomStrings r;
  for (int trial = 0; trial < 100; ++trial) {
    std::string a = r.next(), b = r.next();
    if (a == b) b += "b";
    toml::table sweep{{"sweep", toml::table{{"grid", toml::table{{"model.note", toml::array{a, b}}}}}}};
    std::ostringstream sweep_text;
    sweep_text << toml::toml_formatter(sweep, toml::format_flags::none);
    const std::string text = kPlainBase + sweep_text.str();
    INFO("trial " << trial << ", experiment:\n" << text);
    const SweepPlan plan = expand_sweep_text(text, "sweep.toml", "/base", {}, catalog());
    REQUIRE(plan.points.size() == 2);
    CHECK(plan.points[0].config.model.params.str("note") == a);
    CHECK(plan.points[1].config.model.params.str("note") == b);

    const std::string manifest = (dir / fmt::format("sweep{}.toml", trial)).string();
    const SweepManifest written = make_manifest(plan, "/exp/" + r.next() + ".toml");
    write_manifest(written, manifest);
    const SweepManifest read = read_manifest(manifest);
    CHECK(read.experiment_file == written.experiment_file);
    REQUIRE(read.runs.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(read.runs[i].overrides == written.runs[i].overrides);
      // A sweep child gets the point's settings as `--set`: it must train the same config.
      const ExperimentConfig child = parse_experiment(text, "sweep.toml", "/base", read.runs[i].overrides, catalog());
      CHECK(child.model.params.str("note") == (i == 0 ? a : b));
      CHECK(child.resolved_toml() == plan.points[i].config.resolved_toml());
      CHECK(sweep_run_id(child) == read.runs[i].id);
      // What `compare` shows in the swept column reads back as the value.
      const toml::table cell = toml::parse("v = " + SweepManifest::value_of(read.runs[i], "model.note"));
      CHECK(cell["v"].value<std::string>() == (i == 0 ? a : b));
    }
  }
}

TEST_CASE("every text field of the sweep manifest reads back unchanged", "[toml_roundtrip]") {
  const fs::path dir = test::scratch_dir("toml_roundtrip_manifest");
  RandomStrings r;
  for (int trial = 0; trial < 200; ++trial) {
    SweepManifest m;
    m.experiment = r.next();
    m.experiment_file = r.next();
    m.swept = {r.next(), r.next()};
    m.folds = {0, 2};
    for (int i = 0; i < 3; ++i)
      m.runs.push_back(ManifestRun{r.next(), r.next(), {r.next(), r.next() + "=" + r.next()},
                                   static_cast<SweepRunStatus>(i), r.next()});
    const std::string path = (dir / "sweep.toml").string();
    write_manifest(m, path);
    INFO("trial " << trial);
    const SweepManifest back = read_manifest(path);
    CHECK(back.experiment == m.experiment);
    CHECK(back.experiment_file == m.experiment_file);
    CHECK(back.swept == m.swept);
    CHECK(back.folds == m.folds);
    REQUIRE(back.runs.size() == m.runs.size());
    for (std::size_t i = 0; i < m.runs.size(); ++i) {
      CHECK(back.runs[i].id == m.runs[i].id);
      CHECK(back.runs[i].label == m.runs[i].label);
      CHECK(back.runs[i].overrides == m.runs[i].overrides);
      CHECK(back.runs[i].status == m.runs[i].status);
      CHECK(back.runs[i].file == m.runs[i].file);
    }
  }
}

TEST_CASE("a manifest that would not read back is refused before it is written", "[toml_roundtrip]") {
  const fs::path dir = test::scratch_dir("toml_roundtrip_manifest_utf8");
  SweepManifest m;
  m.experiment = "sw";
  m.experiment_file = "/exp/caf\xe9.toml";  // Latin-1, not UTF-8: a name Linux allows
  const std::string path = (dir / "sweep.toml").string();
  CHECK_THROWS_AS(write_manifest(m, path), ConfigError);
  CHECK_THROWS_WITH(write_manifest(m, path), Catch::Contains("valid UTF-8") && Catch::Contains("/exp/caf"));
  CHECK_FALSE(fs::exists(path));
}

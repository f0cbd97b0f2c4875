// Sweeps in the core: grid, variant and random expansion, stable run ids, errors naming the
// [sweep] entry, the manifest, the merge of Slurm fold units, and the paired comparison.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "chestlab/engine/sweep.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using Catch::Matchers::Contains;

namespace {

// Just enough components for experiments that validate.
class SweepCatalog : public SchemaCatalog {
 public:
  SweepCatalog() {
    entries_.push_back(make(Kind::Dataset, "data", {param_int("count", 10, "samples").range(1, 1000)}));
    entries_.push_back(make(Kind::Model, "net",
                            {param_int("depth", 2, "stages").range(1, 8),
                             param_string("act", "relu", "activation").one_of({"relu", "gelu"})}));
    entries_.push_back(make(Kind::Loss, "bce", {}));
    entries_.push_back(make(Kind::Scheduler, "constant", {}));
    entries_.push_back(make(Kind::Metric, "iou", {}));
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
  static ComponentInfo make(Kind kind, const std::string& name, Schema params) {
    ComponentInfo info;
    info.kind = kind;
    info.name = name;
    info.version = "1.0.0";
    info.params = std::move(params);
    return info;
  }
  std::vector<ComponentInfo> entries_;
};

const std::string kBase =
    "[experiment]\nname = \"sw\"\nseed = 3\n\n"
    "[dataset]\nplugin = \"data\"\n\n"
    "[model]\nplugin = \"net\"\n\n"
    "[loss]\nplugin = \"bce\"\n\n"
    "[optimizer]\nname = \"adam\"\nlr = 0.01\n\n"
    "[[metrics]]\nplugin = \"iou\"\n\n"
    "[cv]\nfolds = 3\n\n";

SweepPlan expand(const std::string& sweep, const std::vector<std::string>& overrides = {}) {
  static const SweepCatalog catalog;
  return expand_sweep_text(kBase + sweep, "x.toml", "/tmp", overrides, catalog);
}

std::set<std::string> ids(const SweepPlan& plan) {
  std::set<std::string> out;
  for (const SweepPoint& p : plan.points) out.insert(p.run_id);
  return out;
}

}  // namespace

TEST_CASE("a grid expands to the cartesian product", "[sweep]") {
  SweepPlan plan = expand("[sweep]\ngrid = { \"optimizer.lr\" = [1e-3, 3e-3], \"model.depth\" = [3, 4] }\n");
  REQUIRE(plan.has_sweep);
  REQUIRE(plan.points.size() == 4);
  CHECK(plan.swept == std::vector<std::string>{"model.depth", "optimizer.lr"});
  std::set<std::pair<std::int64_t, double>> seen;
  for (const SweepPoint& p : plan.points) seen.insert({p.config.model.params.integer("depth"), p.config.optimizer.lr});
  CHECK(seen == std::set<std::pair<std::int64_t, double>>{{3, 1e-3}, {3, 3e-3}, {4, 1e-3}, {4, 3e-3}});
  CHECK(ids(plan).size() == 4);
  CHECK(plan.points[0].overrides() == std::vector<std::string>{"model.depth=3", "optimizer.lr=0.001"});
  CHECK(folds_of(plan.points[0].config) == std::vector<int>{0, 1, 2});
  CHECK(sweep_units(plan).size() == 12);

  SECTION("dotted keys in a [sweep.grid] table mean the same") {
    SweepPlan same = expand("[sweep.grid]\nmodel.depth = [4, 3]\noptimizer.lr = [3e-3, 1e-3]\n");
    CHECK(ids(same) == ids(plan));
  }
}

TEST_CASE("run ids derive from the resolved configuration only", "[sweep]") {
  SweepPlan plan = expand("[sweep]\ngrid = { \"optimizer.lr\" = [1e-3, 3e-3] }\n");
  // The same point reached another way: a variant, another order, a --set, another output.
  SweepPlan variant = expand("[[sweep.variant]]\nname = \"slow\"\noptimizer.lr = 0.003\n"
                             "[[sweep.variant]]\nname = \"fast\"\n\"optimizer.lr\" = 1e-3\n");
  CHECK(ids(variant) == ids(plan));
  SweepPlan moved = expand("[sweep]\ngrid = { \"optimizer.lr\" = [3e-3, 1e-3] }\n", {"experiment.output=\"/elsewhere\""});
  CHECK(ids(moved) == ids(plan));
  CHECK(moved.points[0].config.output == "/elsewhere");
  // A value equal to the file's own is the unswept experiment.
  SweepPlan none = expand("");
  REQUIRE_FALSE(none.has_sweep);
  REQUIRE(none.points.size() == 1);
  SweepPlan base_lr = expand("[sweep]\ngrid = { \"optimizer.lr\" = [0.01] }\n");
  CHECK(base_lr.points[0].run_id == none.points[0].run_id);
  CHECK(none.points[0].run_id == sweep_run_id(none.points[0].config));
  CHECK(none.points[0].run_id.size() == 12);
  // Anything that changes the configuration changes the id.
  CHECK(expand("", {"model.act=\"gelu\""}).points[0].run_id != none.points[0].run_id);
}

TEST_CASE("variants cross the grid and keep their names", "[sweep]") {
  SweepPlan plan = expand("[sweep]\ngrid = { \"model.depth\" = [2, 3] }\n"
                          "[[sweep.variant]]\nname = \"relu\"\n"
                          "[[sweep.variant]]\nname = \"gelu\"\nmodel.act = \"gelu\"\n");
  REQUIRE(plan.points.size() == 4);
  CHECK(plan.points[0].label == "relu");
  CHECK(plan.points[3].label == "gelu");
  CHECK(plan.points[3].config.model.params.str("act") == "gelu");
  CHECK(plan.points[3].value_of("model.act") == "\"gelu\"");
  CHECK(plan.points[3].value_of("model.depth") == "3");
  CHECK(plan.swept == std::vector<std::string>{"model.depth", "model.act"});
}

TEST_CASE("random search draws reproducibly within its ranges", "[sweep]") {
  const std::string text = "[sweep.random]\nsamples = 6\nseed = 11\n"
                           "\"optimizer.lr\" = { log_uniform = [1e-4, 1e-1] }\n"
                           "\"optimizer.weight_decay\" = { uniform = [0.0, 0.5] }\n"
                           "model.depth = { int = [1, 8] }\n"
                           "model.act = { choice = [\"relu\", \"gelu\"] }\n";
  SweepPlan a = expand(text), b = expand(text);
  REQUIRE(a.points.size() == 6);
  CHECK(ids(a) == ids(b));
  double log_sum = 0;
  for (const SweepPoint& p : a.points) {
    CHECK(p.config.optimizer.lr >= 1e-4);
    CHECK(p.config.optimizer.lr <= 1e-1);
    CHECK(p.config.optimizer.weight_decay < 0.5);
    CHECK(p.config.model.params.integer("depth") >= 1);
    CHECK(p.config.model.params.integer("depth") <= 8);
    log_sum += std::log10(p.config.optimizer.lr);
  }
  CHECK(log_sum / 6 > -4);  // spread over the decades, not bunched at the top as uniform would
  CHECK(log_sum / 6 < -1.3);
  CHECK(ids(expand("[sweep.random]\nsamples = 6\nseed = 12\n\"optimizer.lr\" = { log_uniform = [1e-4, 1e-1] }\n")) !=
        ids(a));
  SECTION("repeated draws of a small space are dropped") {
    SweepPlan small = expand("[sweep.random]\nsamples = 20\nmodel.act = { choice = [\"relu\", \"gelu\"] }\n");
    CHECK(small.points.size() == 2);
    CHECK(small.duplicates_skipped == 18);
  }
}

TEST_CASE("sweep errors name the entry, its position and what is allowed", "[sweep]") {
  // kBase has 23 lines; the [sweep] table starts on line 24.
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"optimizer.lrr\" = [1e-3] }\n"),
                    Contains("x.toml:25:29 (sweep.grid \"optimizer.lrr\"): optimizer.lrr: unknown key") &&
                        Contains("did you mean \"lr\""));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"model.depth\" = [3, 9] }\n"),
                    Contains("x.toml:25:30 (sweep.grid \"model.depth\"): model.depth: expected integer in [1, 8], got 9"));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"experiment.seed\" = [1, 2] }\n"),
                    Contains("x.toml:25:10: sweep.grid.\"experiment.seed\": [experiment] cannot be swept"));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"cv.folds\" = [2, 3] }\n"), Contains("[cv] cannot be swept"));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"model.depth\" = 3 }\n"),
                    Contains("x.toml:25:26: sweep.grid.\"model.depth\": expected a non-empty list"));
  CHECK_THROWS_WITH(expand("[sweep]\ngird = {}\n"), Contains("x.toml:25:1: sweep.gird: unknown key; did you mean \"grid\"?"));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"model.depth\" = [2] }\n[sweep.random]\nsamples = 2\n"
                           "model.act = { choice = [\"relu\"] }\n"),
                    Contains("either a grid or a random search"));
  CHECK_THROWS_WITH(expand("[sweep.random]\nsamples = 2\n\"optimizer.lr\" = { log_uniform = [0.0, 1.0] }\n"),
                    Contains("x.toml:26:34: sweep.random.\"optimizer.lr\".log_uniform: expected low > 0"));
  CHECK_THROWS_WITH(expand("[sweep.random]\nsamples = 2\n\"optimizer.lr\" = { gaussian = [0.0, 1.0] }\n"),
                    Contains("unknown distribution"));
  CHECK_THROWS_WITH(expand("[[sweep.variant]]\nname = \"a\"\n[[sweep.variant]]\nname = \"a\"\nmodel.depth = 3\n"),
                    Contains("x.toml:27:8: sweep.variant.1.name: variant name \"a\" is used by sweep.variant.0 too"));
  CHECK_THROWS_WITH(expand("[[sweep.variant]]\nname = \"a\"\n[[sweep.variant]]\nname = \"b\"\n"),
                    Contains("\"a\" and \"b\" resolve to the same configuration"));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"model.depth\" = [2, 3] }\n[[sweep.variant]]\nmodel.depth = 4\n"),
                    Contains("\"model.depth\" is also varied by the grid"));
  // The unswept experiment still validates as before, [sweep] or not.
  CHECK_THROWS_WITH(expand("", {"model.depth=0"}), Contains("--set model.depth=0"));
}

TEST_CASE("the sweep manifest round-trips", "[sweep]") {
  const fs::path dir = test::scratch_dir("sweep_manifest");
  SweepPlan plan = expand("[sweep]\ngrid = { \"model.act\" = [\"relu\", \"gelu\"] }\n");
  SweepManifest m = make_manifest(plan, "x.toml");
  m.runs[1].status = SweepRunStatus::Failed;
  write_manifest(m, manifest_path(dir.string()));
  SweepManifest back = read_manifest(manifest_path(dir.string()));
  CHECK(back.experiment == "sw");
  CHECK(back.folds == std::vector<int>{0, 1, 2});
  CHECK(back.swept == std::vector<std::string>{"model.act"});
  REQUIRE(back.runs.size() == 2);
  CHECK(back.runs[0].id == plan.points[0].run_id);
  CHECK(back.runs[1].status == SweepRunStatus::Failed);
  CHECK(SweepManifest::value_of(back.runs[1], "model.act") == "\"gelu\"");
  CHECK(back.runs[0].file == plan.points[0].run_id + ".h5");
  CHECK(status_from_file((dir / back.runs[0].file).string()) == SweepRunStatus::Pending);
}

namespace {

RunMeta meta_for(const SweepPoint& p) {
  RunMeta meta;
  meta.experiment = p.config.name;
  meta.run_id = p.run_id;
  meta.config_hash = "unit";
  meta.monitor = "iou";
  return meta;
}

// A finished Slurm unit: fold k of the point's run, alone in its file.
void write_unit(const std::string& dir, const SweepPoint& p, int k, double value, RunStatus status) {
  RunFile unit = RunFile::create(unit_file_path(dir, p.run_id, k), meta_for(p), "unit config", Environment{});
  unit.transaction([&](RunWriter& w) {
    w.begin_fold(k, {"iou"}, {"a", "b"}, {std::to_string(k)});
    w.append_epoch(k, HistoryRow{0, 0.01, 1.0, 1.1, 2.0, {value - 0.1}});
    w.append_epoch(k, HistoryRow{1, 0.01, 0.9, 1.0, 2.0, {value}});
    w.set_fold_best(k, 1, value, {NamedArray{"w", {2}, {1.0f, static_cast<float>(k)}}});
    w.set_fold_status(k, status == RunStatus::Complete ? FoldStatus::Complete : FoldStatus::Running);
    w.write_summary();
    w.set_status(status);
  });
}

}  // namespace

TEST_CASE("finished fold units merge into the run file", "[sweep]") {
  const std::string dir = test::scratch_dir("sweep_merge").string();
  SweepPlan plan = expand("[sweep]\ngrid = { \"model.depth\" = [2, 3] }\n");
  const SweepPoint& p = plan.points[0];
  write_unit(dir, p, 0, 0.5, RunStatus::Complete);
  write_unit(dir, p, 2, 0.7, RunStatus::Running);  // its task is still writing
  MergeResult first = merge_units(dir, p);
  CHECK(first.folds_merged == 1);
  CHECK_FALSE(first.run_complete);
  CHECK_FALSE(fs::exists(unit_file_path(dir, p.run_id, 0)));
  CHECK(fs::exists(unit_file_path(dir, p.run_id, 2)));
  CHECK(status_from_file(run_file_path(dir, p.run_id)) == SweepRunStatus::Interrupted);

  fs::remove(unit_file_path(dir, p.run_id, 2));
  write_unit(dir, p, 2, 0.7, RunStatus::Complete);
  write_unit(dir, p, 1, 0.6, RunStatus::Complete);
  MergeResult second = merge_units(dir, p);
  CHECK(second.folds_merged == 2);
  CHECK(second.run_complete);
  RunInfo run = read_run(run_file_path(dir, p.run_id));
  CHECK(run.status == RunStatus::Complete);
  CHECK(run.meta.run_id == p.run_id);
  CHECK(run.meta.config_hash == p.config.hash());
  CHECK(run.config_toml == p.config.resolved_toml());
  REQUIRE(run.folds.size() == 3);
  for (int k = 0; k < 3; ++k) {
    CHECK(run.folds[k].history.size() == 2);
    CHECK(run.folds[k].val_ids == std::vector<std::string>{std::to_string(k)});
    CHECK(run.folds[k].best_epoch == 1);
    REQUIRE(run.folds[k].weights.size() == 1);
    CHECK(run.folds[k].weights[0].values == std::vector<float>{1.0f, static_cast<float>(k)});
  }
  REQUIRE(run.summary.size() == 1);
  CHECK(run.summary[0].mean == Approx(0.6));
  CHECK_FALSE(fs::exists(fs::path(dir) / "units" / p.run_id));

  SECTION("a unit of another run is refused") {
    const SweepPoint& other = plan.points[1];
    RunFile::create(unit_file_path(dir, other.run_id, 0), meta_for(p), "x", Environment{});
    CHECK_THROWS_AS(merge_units(dir, other), DataError);
  }
}

namespace {

RunInfo five_fold_run(const std::string& path, const std::string& id, const std::vector<double>& values) {
  RunMeta meta;
  meta.experiment = "pair";
  meta.run_id = id;
  meta.monitor = "dice";
  RunFile f = RunFile::create(path, meta, "", Environment{});
  f.transaction([&](RunWriter& w) {
    for (int k = 0; k < static_cast<int>(values.size()); ++k) {
      w.begin_fold(k, {"dice"}, {"t"}, {"v" + std::to_string(k)});
      w.append_epoch(k, HistoryRow{0, 0.1, 1, 1, 1, {values[static_cast<std::size_t>(k)]}});
      w.set_fold_best(k, 0, values[static_cast<std::size_t>(k)], {});
      w.set_fold_status(k, FoldStatus::Complete);
    }
    w.set_status(RunStatus::Complete);
  });
  return read_run(path, LoadWeights::No);
}

}  // namespace

TEST_CASE("paired comparison numbers on a hand-made case", "[sweep][compare]") {
  const fs::path dir = test::scratch_dir("sweep_paired");
  RunInfo a = five_fold_run((dir / "a.h5").string(), "run-a", {0.80, 0.75, 0.90, 0.85, 0.70});
  RunInfo b = five_fold_run((dir / "b.h5").string(), "run-b", {0.78, 0.70, 0.86, 0.85, 0.66});
  PairedComparison c = compare_paired(a, b, "dice");
  // Differences 0.02 0.05 0.04 0.00 0.04: mean 0.03, sample std 0.02, t = 0.03 / (0.02 / sqrt 5)
  // = 3.3541, df 4. p two-sided from the closed form of Student's t with 4 degrees of freedom,
  // F(t) = 1/2 + (3/4) x (1 - x^2/3) with x = t / sqrt(4 + t^2), checked against numerical
  // integration of the density: p = 0.0284602033.
  REQUIRE(c.folds.size() == 5);
  CHECK(c.folds[1].diff == Approx(0.05));
  CHECK(c.mean_diff == Approx(0.03).epsilon(1e-12));
  CHECK(c.std_diff == Approx(0.02).epsilon(1e-12));
  REQUIRE(c.t);
  CHECK(*c.t == Approx(3.3541019662).epsilon(1e-9));
  CHECK(c.df == 4);
  REQUIRE(c.p);
  CHECK(*c.p == Approx(0.0284602033).epsilon(1e-8));
  CHECK(c.same_folds);
  CHECK_THAT(render_paired(c, CompareFormat::Table), Contains("t = 3.3541, df = 4, p = 0.02846"));
  // Reversed, the same p and the opposite t.
  PairedComparison r = compare_paired(b, a, "dice");
  CHECK(*r.t == Approx(-3.3541019662).epsilon(1e-9));
  CHECK(*r.p == Approx(*c.p));

  SECTION("fewer than 5 folds: differences only") {
    RunInfo a4 = five_fold_run((dir / "a4.h5").string(), "a4", {0.8, 0.7, 0.9, 0.6});
    RunInfo b4 = five_fold_run((dir / "b4.h5").string(), "b4", {0.7, 0.7, 0.8, 0.6});
    PairedComparison few = compare_paired(a4, b4, "dice");
    CHECK(few.folds.size() == 4);
    CHECK_FALSE(few.p);
    CHECK_THAT(render_paired(few, CompareFormat::Table), Contains("needs at least 5 folds"));
  }
  SECTION("identical differences have no spread to test") {
    std::optional<double> t;
    double p = -1;
    paired_t_test({0.1, 0.1, 0.1, 0.1, 0.1}, t, p);
    CHECK_FALSE(t);
    CHECK(p == 0.0);
    paired_t_test({0, 0, 0, 0, 0}, t, p);
    CHECK(p == 1.0);
  }
}

TEST_CASE("compare over a sweep shows parameters and sorts by a metric", "[sweep][compare]") {
  const fs::path dir = test::scratch_dir("sweep_compare_sorted");
  RunInfo low = five_fold_run((dir / "low.h5").string(), "low", {0.5, 0.5, 0.5, 0.5, 0.5});
  RunInfo high = five_fold_run((dir / "high.h5").string(), "high", {0.9, 0.9, 0.9, 0.9, 0.9});
  CompareOptions options;
  options.sort_by = "dice";
  options.param_columns = {"optimizer.lr"};
  options.params = {{"0.1"}, {"0.001"}};
  CompareTable table = build_compare_table({low, high}, options);
  REQUIRE(table.blocks.size() == 1);
  CHECK(table.blocks[0].rows[0].run == "pair/high");
  CHECK(table.blocks[0].rows[0].params == std::vector<std::string>{"0.001"});
  const std::string csv = render_compare(table, CompareFormat::Csv);
  CHECK_THAT(csv, Catch::StartsWith("metric,run,optimizer.lr,status,fold_0,"));
  CHECK_THAT(csv, Contains("dice,pair/high,0.001,complete,0.9000"));
  CHECK(config_value("[optimizer]\nlr = 0.003\n[[metrics]]\nname = \"x\"\n", "metrics.0.name") == "\"x\"");
  CHECK(config_value("[optimizer]\nlr = 0.003\n", "optimizer.lr") == "0.003");
}

TEST_CASE("train.tensorboard is not part of run ids and cannot be swept", "[sweep][tensorboard]") {
  SweepPlan plan = expand("[sweep]\ngrid = { \"optimizer.lr\" = [1e-3, 3e-3] }\n");
  SweepPlan logged = expand("[sweep]\ngrid = { \"optimizer.lr\" = [1e-3, 3e-3] }\n",
                            {"train.tensorboard=true", "train.tensorboard_every=5"});
  CHECK(ids(logged) == ids(plan));
  CHECK(logged.points[0].config.train.tensorboard);
  try {
    expand("[sweep]\ngrid = { \"train.tensorboard\" = [true, false] }\n");
    FAIL("sweeping train.tensorboard must be refused");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Contains("train.tensorboard cannot be swept"));
  }
}

TEST_CASE("train.seed can be swept with the folds fixed; the fold seeds cannot", "[sweep][seeds]") {
  const SweepPlan plan = expand("[sweep]\ngrid = { \"train.seed\" = [3, 4, 5] }\n");
  REQUIRE(plan.points.size() == 3);
  std::set<std::uint64_t> training_seeds;
  for (const SweepPoint& p : plan.points) {
    CHECK(p.config.fold_seed() == 3);  // every run on the folds of the experiment seed
    training_seeds.insert(p.config.training_seed());
  }
  CHECK(training_seeds == std::set<std::uint64_t>{3, 4, 5});
  CHECK(ids(plan).size() == 3);
  // train.seed = the experiment seed is the unswept experiment: the same run id.
  CHECK(ids(plan).count(expand("").points.front().run_id) == 1);
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"experiment.seed\" = [1, 2] }\n"),
                    Contains("[experiment] cannot be swept") && Contains("sweep \"train.seed\""));
  CHECK_THROWS_WITH(expand("[sweep]\ngrid = { \"cv.seed\" = [1, 2] }\n"),
                    Contains("[cv] cannot be swept") && Contains("sweep \"train.seed\""));
}

// Experiment files: validation messages (position, key, what is allowed), overrides,
// defaults and the resolved form. A fake catalog stands in for the plugin registry.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>
#include <sstream>

#include "chestlab/engine/config.h"
#include "chestlab/errors.h"
#include "chestlab/hash.h"
#include "chestlab/param_check.h"
#include "support.h"

using namespace chestlab;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

ComponentInfo component(Kind kind, std::string name, Schema params) {
  ComponentInfo info;
  info.kind = kind;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.params = std::move(params);
  return info;
}

ComponentInfo box_model(std::string name, Schema params) {
  ComponentInfo info = component(Kind::Model, std::move(name), std::move(params));
  info.output = OutputKind::Boxes;
  return info;
}

ComponentInfo box_consumer(Kind kind, std::string name) {
  ComponentInfo info = component(kind, std::move(name), {});
  info.accepts = {OutputKind::Boxes};
  return info;
}

// A loss with a strict bound and a rule across two of its parameters.
ComponentInfo margin_loss() {
  ComponentInfo info = component(Kind::Loss, "margin_loss",
                                 {param_float("margin", 0.5, "strictly between 0 and 1").above(0).below(1),
                                  param_float("lo", 0.2, "lower edge"), param_float("hi", 0.8, "upper edge")});
  info.checks = {param_check({"lo", "hi"}, "lo <= hi", [](const Params& p) {
    return p.real("lo") <= p.real("hi") ? std::string() : "must not exceed hi = " + to_toml(ParamValue{p.real("hi")});
  })};
  return info;
}

// A metric where smaller values are better.
ComponentInfo error_rate() {
  ComponentInfo info = component(Kind::Metric, "error_rate", {});
  info.higher_is_better = false;
  return info;
}

class FakeCatalog : public SchemaCatalog {
 public:
  FakeCatalog() {
    add(component(Kind::Dataset, "fake_data",
                  {param_required("root", ParamType::String, "image folder"),
                   param_int("count", 10, "samples").range(1, 1000)}));
    add(component(Kind::Model, "seg_net",
                  {param_int("channels", 16, "width").range(1, 1024),
                   param_string("act", "relu", "activation").one_of({"relu", "gelu"}),
                   param_ints("widths", {8, 16}, "per stage").range(1, 512),
                   param_float("dropout", 0.0, "rate").range(0, 1)}));
    add(box_model("box_net", {param_int("anchors", 9, "per cell").at_least(1)}));
    add(component(Kind::Loss, "bce", {param_float("pos_weight", 1.0, "weight").at_least(0)}));
    add(box_consumer(Kind::Loss, "box_loss"));
    add(margin_loss());
    add(component(Kind::Scheduler, "constant", {}));
    add(component(Kind::Scheduler, "cosine", {param_float("min_lr", 0.0, "floor").at_least(0)}));
    add(component(Kind::Metric, "iou", {param_float("threshold", 0.5, "binarize").range(0, 1)}));
    add(component(Kind::Metric, "accuracy", {}));
    add(box_consumer(Kind::Metric, "box_map"));
    add(error_rate());
    augmentations_["hflip"] = {param_float("p", 1.0, "probability").range(0, 1)};
    augmentations_["rotate"] = {param_float("p", 1.0, "probability").range(0, 1),
                                param_float("degrees", 10.0, "max angle").range(0, 180)};
  }

  const ComponentInfo* find(Kind kind, const std::string& name) const override {
    auto it = components_.find({kind, name});
    return it == components_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> names(Kind kind) const override {
    std::vector<std::string> out;
    for (const auto& [key, info] : components_)
      if (key.first == kind) out.push_back(key.second);
    return out;
  }
  const Schema* augmentation(const std::string& type) const override {
    auto it = augmentations_.find(type);
    return it == augmentations_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> augmentation_types() const override {
    std::vector<std::string> out;
    for (const auto& [name, schema] : augmentations_) out.push_back(name);
    return out;
  }

 protected:
  void add(ComponentInfo info) { components_[{info.kind, info.name}] = std::move(info); }

 private:
  std::map<std::pair<Kind, std::string>, ComponentInfo> components_;
  std::map<std::string, Schema> augmentations_;
};

const FakeCatalog& catalog() {
  static const FakeCatalog instance;
  return instance;
}

// With components whose rules read other sections, and a float that accepts inf.
class CrossSectionCatalog : public FakeCatalog {
 public:
  CrossSectionCatalog() {
    add(component(Kind::Dataset, "sized_data", {param_int("image_size", 64, "side").range(8, 4096)}));
    add(down_net());
    add(component(Kind::Loss, "clipped", {param_float("max_value", 1e9, "inf: no clipping").accepts_nonfinite()}));
  }
  static ComponentInfo down_net() {
    ComponentInfo down = component(Kind::Model, "down_net", {param_int("depth", 2, "halvings").range(1, 8)});
    down.checks = {image_size_multiple_of_depth("down_net")};
    return down;
  }
};

// Sections of a valid file. A test puts the section it examines first, so the line
// numbers it expects can be read off the test itself.
const std::string kExperiment = "[experiment]\nname = \"unit\"\n";
const std::string kDataset = "[dataset]\nplugin = \"fake_data\"\nroot = \"images\"\n";
const std::string kModel = "[model]\nplugin = \"seg_net\"\n";
const std::string kLoss = "[loss]\nplugin = \"bce\"\n";
const std::string kMetrics = "[[metrics]]\nplugin = \"iou\"\n";
const std::string kValid = kExperiment + kDataset + kModel + kLoss + kMetrics;

ExperimentConfig parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_experiment(text, "x.toml", "/base", overrides, catalog());
}

// The message of the ConfigError `text` must raise.
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse(text, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError for:\n" << text);
  return "";
}

ExperimentConfig parse_cross(const std::string& text, const std::vector<std::string>& overrides = {}) {
  static const CrossSectionCatalog cross;
  return parse_experiment(text, "x.toml", "/base", overrides, cross);
}

std::string cross_error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_cross(text, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError for:\n" << text);
  return "";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("config: a minimal file gets every default", "[config]") {
  const ExperimentConfig c = parse(kValid);
  CHECK(c.source_file == "x.toml");
  CHECK(c.base_dir == "/base");
  CHECK(c.name == "unit");
  CHECK(c.seed == 42);
  CHECK(c.output == "results");
  CHECK(c.dataset.plugin == "fake_data");
  CHECK(c.dataset.params.str("root") == "images");
  CHECK(c.dataset.params.integer("count") == 10);
  CHECK(c.on_error == "stop");
  CHECK(c.augment.empty());
  CHECK(c.model.params.integer("channels") == 16);
  CHECK(c.model.params.str("act") == "relu");
  CHECK(c.model.params.integers("widths") == std::vector<std::int64_t>{8, 16});
  CHECK(c.loss.params.real("pos_weight") == 1.0);
  CHECK(c.scheduler.plugin == "constant");
  CHECK(c.warmup_epochs == 0);
  CHECK(c.optimizer.name == "adam");
  CHECK(c.optimizer.lr == 1e-3);
  CHECK(c.optimizer.weight_decay == 0);
  CHECK(c.optimizer.betas == std::vector<double>{0.9, 0.999});
  CHECK(c.optimizer.momentum == 0.9);
  CHECK_FALSE(c.optimizer.nesterov);
  REQUIRE(c.metrics.size() == 1);
  CHECK(c.metrics[0].name == "iou");
  CHECK(c.metrics[0].monitor);  // the first metric monitors when none is named
  CHECK(c.metrics[0].maximize);
  CHECK(c.metrics[0].params.real("threshold") == 0.5);
  CHECK(c.train.epochs == 10);
  CHECK(c.train.batch_size == 16);
  CHECK(c.train.device == "auto");
  CHECK(c.train.workers == 2);
  CHECK(c.train.prefetch == 4);
  CHECK(c.train.threads == 0);
  CHECK(c.train.grad_clip == 0);
  CHECK(c.train.early_stopping == 0);
  CHECK(c.train.deterministic);
  CHECK(c.cv.mode == "kfold");
  CHECK(c.cv.folds == 5);
  CHECK(c.cv.stratify);
  CHECK(c.cv.run_folds.empty());
  CHECK(c.cv.holdout == std::vector<double>{0.6, 0.2, 0.2});
  CHECK(c.cv.holdout_order == "file");
}

TEST_CASE("config: values given in the file are read", "[config]") {
  const ExperimentConfig c = parse(
      "[experiment]\nname = \"full.run-1\"\nseed = 7\noutput = \"out\"\n"
      "[dataset]\nplugin = \"fake_data\"\nroot = \"img\"\ncount = 50\non_error = \"skip\"\n"
      "[[dataset.augment]]\ntype = \"rotate\"\np = 0.5\ndegrees = 15\n"
      "[[dataset.augment]]\ntype = \"hflip\"\n"
      "[model]\nplugin = \"seg_net\"\nact = \"gelu\"\nwidths = [4, 8, 16]\n" + kLoss +
      "[optimizer]\nname = \"sgd\"\nmomentum = 0.8\nnesterov = true\n"
      "[scheduler]\nplugin = \"cosine\"\nwarmup_epochs = 2\nmin_lr = 1e-6\n"
      "[[metrics]]\nplugin = \"accuracy\"\n"
      "[[metrics]]\nplugin = \"iou\"\nname = \"iou_70\"\nthreshold = 0.7\nmonitor = true\nmode = \"min\"\n"
      "[train]\nepochs = 3\ndevice = \"cuda:1\"\n"
      "[cv]\nmode = \"holdout\"\nholdout = [0.7, 0.15, 0.15]\nholdout_order = \"random\"\nrun_folds = [0, 2]\n");
  CHECK(c.name == "full.run-1");
  CHECK(c.seed == 7);
  CHECK(c.on_error == "skip");
  REQUIRE(c.augment.size() == 2);
  CHECK(c.augment[0].type == "rotate");
  CHECK(c.augment[0].params.real("degrees") == 15.0);
  CHECK(c.augment[1].type == "hflip");
  CHECK(c.augment[1].params.real("p") == 1.0);
  CHECK(c.model.params.integers("widths") == std::vector<std::int64_t>{4, 8, 16});
  CHECK(c.optimizer.name == "sgd");
  CHECK(c.optimizer.momentum == 0.8);
  CHECK(c.scheduler.plugin == "cosine");
  CHECK(c.warmup_epochs == 2);
  CHECK(c.scheduler.params.real("min_lr") == 1e-6);
  REQUIRE(c.metrics.size() == 2);
  CHECK_FALSE(c.metrics[0].monitor);
  CHECK(c.monitor().name == "iou_70");
  CHECK_FALSE(c.monitor().maximize);
  CHECK(c.train.device == "cuda:1");
  CHECK(c.cv.holdout == std::vector<double>{0.7, 0.15, 0.15});
  CHECK(c.cv.run_folds == std::vector<std::int64_t>{0, 2});
}

TEST_CASE("config: an integer is accepted where a float is expected", "[config]") {
  const ExperimentConfig c =
      parse("[optimizer]\nlr = 1\nbetas = [0, 0.5]\n[model]\nplugin = \"seg_net\"\ndropout = 0\n" + kExperiment +
            kDataset + kLoss + kMetrics);
  CHECK(c.optimizer.lr == 1.0);
  CHECK(c.optimizer.betas == std::vector<double>{0.0, 0.5});
  CHECK(c.model.params.real("dropout") == 0.0);
  // Stored as floats, so the resolved file keeps them floats.
  CHECK_THAT(c.resolved_toml(), Contains("lr = 1.0\n") && Contains("betas = [0.0, 0.5]\n") &&
                                    Contains("dropout = 0.0\n"));
}

TEST_CASE("config: unknown key names the key and suggests the closest allowed one", "[config][errors]") {
  const std::string e = error_of("[model]\nplugin = \"seg_net\"\nchanels = 8\n" + kExperiment + kDataset + kLoss + kMetrics);
  CHECK_THAT(e, StartsWith("x.toml:3:1: model.chanels: unknown key; did you mean \"channels\"?"));
  CHECK_THAT(e, Contains("(allowed keys: plugin, init, init_rename, init_partial, channels, act, widths, dropout)"));
}

TEST_CASE("config: unknown section suggests the closest section", "[config][errors]") {
  const std::string e = error_of("[modle]\nplugin = \"seg_net\"\n" + kValid);
  CHECK_THAT(e, StartsWith("x.toml:1:2: modle: unknown section; did you mean \"model\"?"));
}

TEST_CASE("config: unknown plugin lists the available ones of its kind", "[config][errors]") {
  const std::string e = error_of("[model]\nplugin = \"seg_nett\"\n" + kExperiment + kDataset + kLoss + kMetrics);
  CHECK(e ==
        "x.toml:2:10: model.plugin: unknown model \"seg_nett\"; did you mean \"seg_net\"? "
        "(available: box_net, seg_net)");

  const std::string aug =
      error_of("[[dataset.augment]]\ntype = \"vflip\"\n" + kExperiment + kDataset + kModel + kLoss + kMetrics);
  CHECK_THAT(aug, StartsWith("x.toml:2:8: dataset.augment.0.type: unknown augmentation \"vflip\""));
  CHECK_THAT(aug, Contains("(available: hflip, rotate)"));
}

TEST_CASE("config: wrong type is reported with what was found", "[config][errors]") {
  CHECK(error_of("[model]\nplugin = \"seg_net\"\nchannels = \"eight\"\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:3:12: model.channels: expected integer in [1, 1024], got string \"eight\"");
  // A float is not an integer, even a whole one.
  CHECK(error_of("[model]\nplugin = \"seg_net\"\nchannels = 8.0\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:3:12: model.channels: expected integer in [1, 1024], got float 8.0");
  CHECK(error_of("[train]\ndeterministic = 1\n" + kValid) ==
        "x.toml:2:17: train.deterministic: expected bool, got integer 1");
  CHECK(error_of("[experiment]\nname = \"a\"\n[experiment.x]\n" + kDataset + kModel + kLoss + kMetrics) ==
        "x.toml:3:13: experiment.x: unknown key (allowed keys: name, seed, output)");
  CHECK(error_of("model = 3\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:1:9: model: expected a table [model], got integer 3");
  CHECK_THAT(error_of(kExperiment + kDataset + kModel + kLoss + "[metrics]\nplugin = \"iou\"\n"),
             StartsWith("x.toml:10:1: metrics: expected an array of tables [[metrics]]"));
}

TEST_CASE("config: out-of-range values name the allowed range", "[config][errors]") {
  CHECK(error_of("[model]\nplugin = \"seg_net\"\nchannels = -3\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:3:12: model.channels: expected integer in [1, 1024], got -3");
  CHECK(error_of("[train]\nepochs = 0\n" + kValid) == "x.toml:2:10: train.epochs: expected integer >= 1, got 0");
  CHECK(error_of("[model]\nplugin = \"seg_net\"\nwidths = [8, 0]\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:3:14: model.widths[1]: expected list of integers with every element in [1, 512], got 0");
  CHECK(error_of("[optimizer]\nlr = 0\n" + kValid) == "x.toml:2:6: optimizer.lr: expected float > 0, got 0.0");
  CHECK(error_of("[optimizer]\nbetas = [0.9, 1.0]\n" + kValid) ==
        "x.toml:2:9: optimizer.betas: expected a list of 2 floats, each in [0, 1), got [0.9, 1.0]");
}

TEST_CASE("config: a strict bound is refused with what is allowed", "[config][errors]") {
  CHECK(error_of("[loss]\nplugin = \"margin_loss\"\nmargin = 1.0\n" + kExperiment + kDataset + kModel + kMetrics) ==
        "x.toml:3:10: loss.margin: expected float in (0, 1), got 1.0");
  CHECK(error_of("[loss]\nplugin = \"margin_loss\"\nmargin = 0\n" + kExperiment + kDataset + kModel + kMetrics) ==
        "x.toml:3:10: loss.margin: expected float in (0, 1), got 0.0");
  CHECK(parse("[loss]\nplugin = \"margin_loss\"\nmargin = 0.999\n" + kExperiment + kDataset + kModel + kMetrics)
            .loss.params.real("margin") == 0.999);
}

TEST_CASE("config: a component's rule across its parameters is reported at the key the file sets",
          "[config][errors]") {
  const std::string tail = kExperiment + kDataset + kModel + kMetrics;
  CHECK(error_of("[loss]\nplugin = \"margin_loss\"\nlo = 0.9\n" + tail) ==
        "x.toml:3:6: loss.lo: must not exceed hi = 0.8");
  // The first of the rule's keys the file sets: here only hi.
  CHECK(error_of("[loss]\nplugin = \"margin_loss\"\nhi = 0.1\n" + tail) ==
        "x.toml:3:6: loss.hi: must not exceed hi = 0.1");
  // A --set override is named as the origin, like any other error of its key.
  CHECK(error_of(kValid, {"loss.plugin=margin_loss", "loss.lo=0.95"}) ==
        "--set loss.lo=0.95: loss.lo: must not exceed hi = 0.8");
  // A value already in error is reported once; the rule does not run on a default stand-in.
  CHECK(error_of("[loss]\nplugin = \"margin_loss\"\nlo = \"x\"\nhi = 0.1\n" + tail) ==
        "x.toml:3:6: loss.lo: expected float, got string \"x\"");
  CHECK(parse("[loss]\nplugin = \"margin_loss\"\nlo = 0.5\nhi = 0.5\n" + tail).loss.params.real("lo") == 0.5);
}

TEST_CASE("config: a metric's mode defaults to its declared direction", "[config]") {
  const std::string head = kExperiment + kDataset + kModel + kLoss;
  const ExperimentConfig declared = parse(head + "[[metrics]]\nplugin = \"error_rate\"\n[[metrics]]\nplugin = \"iou\"\n");
  CHECK_FALSE(declared.metrics[0].maximize);
  CHECK(declared.metrics[1].maximize);
  CHECK_THAT(declared.resolved_toml(), Contains("plugin = \"error_rate\"\nname = \"error_rate\"\nmonitor = true\nmode = \"min\""));
  const ExperimentConfig given = parse(head + "[[metrics]]\nplugin = \"error_rate\"\nmode = \"max\"\n");
  CHECK(given.metrics[0].maximize);
}

TEST_CASE("config: a value outside the choices suggests the closest choice", "[config][errors]") {
  CHECK(error_of("[model]\nplugin = \"seg_net\"\nact = \"relux\"\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:3:7: model.act: expected string (one of: relu, gelu), got \"relux\"; did you mean \"relu\"?");
  CHECK(error_of("[cv]\nmode = \"kfolds\"\n" + kValid) ==
        "x.toml:2:8: cv.mode: expected string (one of: kfold, holdout), got \"kfolds\"; did you mean \"kfold\"?");
}

TEST_CASE("config: checks a schema cannot express", "[config][errors]") {
  CHECK(error_of("[train]\ndevice = \"gpu\"\n" + kValid) ==
        "x.toml:2:10: train.device: expected one of: auto, cpu, cuda, cuda:N (N a GPU index), got \"gpu\"");
  CHECK_THAT(error_of("[cv]\nfolds = 3\nrun_folds = [0, 3]\n" + kValid),
             StartsWith("x.toml:3:13: cv.run_folds: fold 3 does not exist: folds are numbered 0 to 2"));
  CHECK_THAT(error_of("[cv]\nholdout = [0.5, 0.2, 0.2]\n" + kValid),
             StartsWith("x.toml:2:11: cv.holdout: expected 3 fractions (train, validation, test) summing to 1"));
  CHECK_THAT(error_of("[experiment]\nname = \"my run\"\n" + kDataset + kModel + kLoss + kMetrics),
             StartsWith("x.toml:2:8: experiment.name: expected a non-empty name of letters, digits"));
}

TEST_CASE("config: a missing required key is reported at its section header", "[config][errors]") {
  CHECK(error_of("[dataset]\nplugin = \"fake_data\"\n" + kExperiment + kModel + kLoss + kMetrics) ==
        "x.toml:1:1: dataset.root: required key is missing (expected string)");
  CHECK(error_of("\n[model]\nchannels = 8\n" + kExperiment + kDataset + kLoss + kMetrics) ==
        "x.toml:2:1: model.plugin: required key is missing; name one of the available models: box_net, seg_net");
  CHECK(error_of(kExperiment + kDataset + kModel + kMetrics) == "x.toml:1:1: missing required section [loss]");
  CHECK(error_of(kExperiment + kDataset + kModel + kLoss) ==
        "x.toml:1:1: missing required section [[metrics]] (at least one metric)");
}

TEST_CASE("config: metric names must be unique", "[config][errors]") {
  const std::string tail = kExperiment + kDataset + kModel + kLoss;
  CHECK_THAT(error_of("[[metrics]]\nplugin = \"iou\"\n[[metrics]]\nplugin = \"iou\"\nthreshold = 0.7\n" + tail),
             StartsWith("x.toml:3:1: metrics.1.name: duplicate metric name \"iou\" (metrics.0 has it too)"));
  CHECK_THAT(error_of("[[metrics]]\nplugin = \"iou\"\n[[metrics]]\nplugin = \"accuracy\"\nname = \"iou\"\n" + tail),
             StartsWith("x.toml:5:8: metrics.1.name: duplicate metric name \"iou\""));
  // Named apart, the same plugin may be used twice.
  const ExperimentConfig c = parse("[[metrics]]\nplugin = \"iou\"\n[[metrics]]\nplugin = \"iou\"\nname = \"iou70\"\n" + tail);
  CHECK(c.metrics[1].name == "iou70");
}

TEST_CASE("config: at most one metric is the monitor", "[config][errors]") {
  const std::string tail = kExperiment + kDataset + kModel + kLoss;
  CHECK(error_of("[[metrics]]\nplugin = \"iou\"\nmonitor = true\n[[metrics]]\nplugin = \"accuracy\"\nmonitor = true\n" +
                 tail) ==
        "x.toml:6:11: metrics.1.monitor: only one metric may be the monitor, and metrics.0 (\"iou\") already is");
  const ExperimentConfig c =
      parse("[[metrics]]\nplugin = \"iou\"\n[[metrics]]\nplugin = \"accuracy\"\nmonitor = true\n" + tail);
  CHECK_FALSE(c.metrics[0].monitor);
  CHECK(c.monitor().name == "accuracy");
}

TEST_CASE("config: loss and metrics must fit what the model outputs", "[config][errors]") {
  CHECK(error_of("[model]\nplugin = \"box_net\"\n[loss]\nplugin = \"box_loss\"\n[[metrics]]\nplugin = \"iou\"\n" +
                 kExperiment + kDataset) ==
        "x.toml:6:10: metrics.0.plugin: metric \"iou\" requires mask, but model \"box_net\" outputs boxes");
  CHECK(error_of("[loss]\nplugin = \"box_loss\"\n" + kExperiment + kDataset + kModel + kMetrics) ==
        "x.toml:2:10: loss.plugin: loss \"box_loss\" requires boxes, but model \"seg_net\" outputs mask");
  const ExperimentConfig boxes =
      parse("[model]\nplugin = \"box_net\"\n[loss]\nplugin = \"box_loss\"\n[[metrics]]\nplugin = \"box_map\"\n" +
            kExperiment + kDataset);
  CHECK(boxes.model.plugin == "box_net");
}

TEST_CASE("config: a TOML syntax error is reported with its position", "[config][errors]") {
  const std::string e = error_of("[model]\nplugin = \"seg_net\"\nchannels = = 3\n" + kExperiment);
  CHECK_THAT(e, StartsWith("x.toml:3:12: TOML syntax error: "));
}

TEST_CASE("config: every error of a file is reported, sorted by line", "[config][errors]") {
  const std::string e = error_of(
      "[train]\n"                // 1
      "epochs = -1\n"            // 2
      "[model]\n"                // 3
      "plugin = \"seg_net\"\n"   // 4
      "depht = 3\n"              // 5
      "channels = 0\n"           // 6
      "[experiment]\n"           // 7
      "name = \"ok\"\n"          // 8
      "[dataset]\n"              // 9
      "plugin = \"fake_data\"\n" // 10
      "on_error = \"ignore\"\n"  // 11
      "[[metrics]]\n"            // 12
      "plugin = \"iuo\"\n");     // 13, and [loss] is missing
  const std::vector<std::string> lines = lines_of(e);
  REQUIRE(lines.size() == 7);
  CHECK_THAT(lines[0], StartsWith("x.toml:1:1: missing required section [loss]"));
  CHECK_THAT(lines[1], StartsWith("x.toml:2:10: train.epochs: expected integer >= 1, got -1"));
  CHECK_THAT(lines[2], StartsWith("x.toml:5:1: model.depht: unknown key"));
  CHECK_THAT(lines[3], StartsWith("x.toml:6:12: model.channels: expected integer in [1, 1024], got 0"));
  CHECK_THAT(lines[4], StartsWith("x.toml:9:1: dataset.root: required key is missing"));
  CHECK_THAT(lines[5], StartsWith("x.toml:11:12: dataset.on_error: expected string (one of: stop, skip)"));
  CHECK_THAT(lines[6], StartsWith("x.toml:13:10: metrics.0.plugin: unknown metric \"iuo\"; did you mean \"iou\"?"));
}

TEST_CASE("config: --set overrides are applied and validated like file values", "[config][overrides]") {
  const ExperimentConfig c = parse(
      kValid + "[[dataset.augment]]\ntype = \"hflip\"\n",
      {"train.epochs=3", "model.widths=[1,2]", "model.act=\"gelu\"", "dataset.root=/data/x y",
       "metrics.0.threshold=0.25", "scheduler.plugin=cosine", "scheduler.min_lr = 1e-5",
       "dataset.augment.0.p=0.3", "optimizer.lr=1"});
  CHECK(c.train.epochs == 3);
  CHECK(c.model.params.integers("widths") == std::vector<std::int64_t>{1, 2});
  CHECK(c.model.params.str("act") == "gelu");
  CHECK(c.dataset.params.str("root") == "/data/x y");  // not TOML: taken as a plain string
  CHECK(c.metrics[0].params.real("threshold") == 0.25);
  CHECK(c.scheduler.plugin == "cosine");  // the file has no [scheduler]: the override makes one
  CHECK(c.scheduler.params.real("min_lr") == 1e-5);
  CHECK(c.augment[0].params.real("p") == 0.3);
  CHECK(c.optimizer.lr == 1.0);
}

TEST_CASE("config: a bad --set names the override", "[config][overrides][errors]") {
  CHECK(error_of(kValid, {"model.channels=abc"}) ==
        "--set model.channels=abc: model.channels: expected integer in [1, 1024], got string \"abc\"");
  CHECK_THAT(error_of(kValid, {"model.chanels=3"}),
             StartsWith("--set model.chanels=3: model.chanels: unknown key; did you mean \"channels\"?"));
  CHECK_THAT(error_of(kValid, {"trian.epochs=3"}),
             StartsWith("--set trian.epochs=3: trian: unknown section; did you mean \"train\"?"));
  CHECK_THAT(error_of(kValid, {"model..channels=3"}),
             StartsWith("--set model..channels=3: \"model..channels\" is not a key path"));
  CHECK(error_of(kValid, {"train.epochs"}) ==
        "--set train.epochs: expected section.key=value, e.g. --set train.epochs=3");
  CHECK(error_of(kValid, {"metrics.2.threshold=0.1"}) ==
        "--set metrics.2.threshold=0.1: metrics.2: metrics has 1 entries (indices from 0); there is no entry 2");
  CHECK_THAT(error_of(kValid, {"metrics.threshold=0.1"}),
             StartsWith("--set metrics.threshold=0.1: metrics.threshold: metrics is a list; address one entry"));
  CHECK(error_of(kValid, {"model.plugin=unet"}) ==
        "--set model.plugin=unet: model.plugin: unknown model \"unet\" (available: box_net, seg_net)");
}

TEST_CASE("config: file errors come before override errors", "[config][overrides][errors]") {
  const std::vector<std::string> lines =
      lines_of(error_of("[train]\nepochs = 0\n" + kValid, {"train.batch_size=0", "cv.folds=1"}));
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], StartsWith("x.toml:2:10: train.epochs"));
  CHECK_THAT(lines[1], StartsWith("--set train.batch_size=0: train.batch_size: expected integer >= 1, got 0"));
  CHECK_THAT(lines[2], StartsWith("--set cv.folds=1: cv.folds: expected integer >= 2, got 1"));
}

TEST_CASE("config: resolved TOML reads back to the same config and hash", "[config][resolved]") {
  const std::string full = kExperiment + kDataset + "[[dataset.augment]]\ntype = \"rotate\"\np = 0.5\n" + kModel +
                           "widths = [3, 5]\n" + kLoss + "[scheduler]\nplugin = \"cosine\"\nmin_lr = 1e-7\n" +
                           "[[metrics]]\nplugin = \"iou\"\nthreshold = 0.3\n[[metrics]]\nplugin = \"accuracy\"\n"
                           "mode = \"min\"\n[optimizer]\nlr = 0.1\nbetas = [0.1, 0.2]\n"
                           "[cv]\nholdout = [0.8, 0.1, 0.1]\n";
  const ExperimentConfig first = parse(full);
  const std::string resolved = first.resolved_toml();
  const ExperimentConfig again = parse(resolved);
  CHECK(again.resolved_toml() == resolved);
  CHECK(again.hash() == first.hash());
  CHECK(first.hash().size() == 12);
  CHECK(first.hash().find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(again.optimizer.lr == 0.1);
  CHECK(again.metrics[0].monitor);
  CHECK_FALSE(again.metrics[1].maximize);
  CHECK(again.augment[0].params.real("degrees") == 10.0);

  // Every host key appears in the resolved file, defaults included.
  for (const HostSection& section : host_sections()) {
    INFO(section.header);
    CHECK_THAT(resolved, Contains(section.header + "\n"));
    for (const ParamSpec& spec : *section.schema) CHECK_THAT(resolved, Contains("\n" + spec.name + " = "));
  }
}

TEST_CASE("config: the hash depends on the content, not on its spelling", "[config][resolved]") {
  const std::string base = parse(kValid).hash();
  // Same experiment written differently: reordered sections, comments, defaults spelled out.
  CHECK(parse("# comment\n" + kMetrics + kLoss + kModel + "channels = 16\n" + kDataset + kExperiment +
              "seed = 42\n[train]\nepochs = 10\n")
            .hash() == base);
  CHECK(parse(kValid).hash() == base);
  // A changed value changes it, whether in a host section or a plugin parameter.
  CHECK(parse(kValid, {"train.epochs=11"}).hash() != base);
  CHECK(parse(kValid, {"model.channels=17"}).hash() != base);
  CHECK(parse(kValid, {"metrics.0.threshold=0.51"}).hash() != base);
  CHECK(parse(kValid, {"experiment.seed=43"}).hash() != base);
}

TEST_CASE("config: load_experiment reads a file and records its directory", "[config]") {
  const std::filesystem::path dir = test::scratch_dir("config_load");
  const std::filesystem::path file = dir / "exp.toml";
  std::ofstream(file) << kValid;
  const ExperimentConfig c = load_experiment(file.string(), {"train.epochs=2"}, catalog());
  CHECK(c.source_file == file.string());
  CHECK(std::filesystem::path(c.base_dir) == std::filesystem::absolute(dir).lexically_normal());
  CHECK(c.train.epochs == 2);

  std::ofstream(dir / "bad.toml") << "[train]\nepochs = 0\n" << kValid;
  try {
    load_experiment((dir / "bad.toml").string(), {}, catalog());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), StartsWith((dir / "bad.toml").string() + ":2:10: train.epochs"));
  }
  CHECK_THROWS_WITH(load_experiment((dir / "missing.toml").string(), {}, catalog()), Contains("missing.toml"));
}

TEST_CASE("config: the quickstart experiment's host sections are valid", "[config]") {
  // The plugins it names are not in this fake catalog; check the host-level sections,
  // which need no plugin, by reading them with each plugin section replaced.
  std::ifstream in(test::source_dir() / "experiments" / "quickstart.toml");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  try {
    parse(text.str());
    FAIL("the fake catalog has none of the quickstart plugins");
  } catch (const ConfigError& e) {
    // Every error is about an unknown plugin or augmentation, none about a host key.
    for (const std::string& line : lines_of(e.what())) {
      INFO(line);
      CHECK((line.find(": unknown dataset ") != std::string::npos || line.find(": unknown model ") != std::string::npos ||
             line.find(": unknown loss ") != std::string::npos || line.find(": unknown scheduler ") != std::string::npos ||
             line.find(": unknown metric ") != std::string::npos ||
             line.find(": unknown augmentation ") != std::string::npos));
    }
  }
}

TEST_CASE("config: the format documentation lists every host key", "[config]") {
  std::ifstream in(test::source_dir() / "docs" / "experiment-format.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  for (const HostSection& section : host_sections()) {
    INFO(section.header);
    CHECK_THAT(text.str(), Contains("`" + section.header + "`"));
    for (const ParamSpec& spec : *section.schema) CHECK_THAT(text.str(), Contains("| `" + spec.name + "` |"));
  }
}

TEST_CASE("config: a rule across sections is reported at the key the file sets, with the nearest allowed value",
          "[config][errors]") {
  const std::string sized = "[dataset]\nplugin = \"sized_data\"\nimage_size = 63\n";
  const std::string down = "[model]\nplugin = \"down_net\"\n";
  CHECK(cross_error_of(sized + down + kExperiment + kLoss + kMetrics) ==
        "x.toml:3:14: dataset.image_size: 63 is not a multiple of 4 for down_net depth 2; nearest: 64 (or lower "
        "model.depth)");
  // Rounded to the nearer multiple, and never below one multiple.
  CHECK_THAT(cross_error_of("[dataset]\nplugin = \"sized_data\"\nimage_size = 70\n" + down + kExperiment + kLoss + kMetrics),
             Contains("nearest: 72"));
  CHECK_THAT(cross_error_of("[dataset]\nplugin = \"sized_data\"\nimage_size = 9\n[model]\nplugin = \"down_net\"\ndepth = 4\n" +
                      kExperiment + kLoss + kMetrics),
             Contains("9 is not a multiple of 16") && Contains("nearest: 16"));
  // The file sets only the model's key: the error is reported there.
  CHECK(cross_error_of("[model]\nplugin = \"down_net\"\ndepth = 7\n[dataset]\nplugin = \"sized_data\"\n" + kExperiment +
                 kLoss + kMetrics) ==
        "x.toml:3:9: model.depth: 64 is not a multiple of 128 for down_net depth 7; nearest: 128 (or lower model.depth)");
  // An override is checked the same way.
  CHECK_THAT(cross_error_of("[dataset]\nplugin = \"sized_data\"\n" + down + kExperiment + kLoss + kMetrics,
                      {"dataset.image_size=66"}),
             Contains("dataset.image_size: 66 is not a multiple of 4"));
  CHECK(parse_cross(sized + "[model]\nplugin = \"down_net\"\ndepth = 0\n" + kExperiment + kLoss + kMetrics,
              {"model.depth=1", "dataset.image_size=64"})
            .model.params.integer("depth") == 1);
  // A dataset without image_size: the rule has nothing to read and is skipped.
  CHECK(parse_cross(kDataset + down + kExperiment + kLoss + kMetrics).model.plugin == "down_net");
  // An error already reported in the other section is not followed by a second, misleading one.
  const std::string both = cross_error_of("[dataset]\nplugin = \"sized_data\"\nimage_size = 3\n" + down + kExperiment +
                                    kLoss + kMetrics);
  CHECK_THAT(both, Contains("dataset.image_size: expected integer in [8, 4096], got 3"));
  CHECK_THAT(both, !Contains("multiple of"));
}

TEST_CASE("config: check_params leaves rules across sections to the experiment reader", "[config]") {
  const ComponentInfo down = CrossSectionCatalog::down_net();
  CHECK(check_params(down.params, {{"depth", std::int64_t{3}}}, "model 'down_net'", down.checks).integer("depth") == 3);
}

TEST_CASE("config: floats refuse inf and nan unless the parameter accepts them", "[config][errors]") {
  CHECK(cross_error_of("[optimizer]\nlr = inf\n" + kValid) ==
        "x.toml:2:6: optimizer.lr: expected float > 0, got inf (inf and nan are not accepted here)");
  CHECK_THAT(cross_error_of("[optimizer]\nlr = nan\n" + kValid), Contains("optimizer.lr") && Contains("got nan"));
  CHECK_THAT(cross_error_of(kValid, {"optimizer.lr=-inf"}), Contains("optimizer.lr") && Contains("not accepted"));
  // Unbounded floats too: a plugin's "any float" still means a finite one.
  CHECK_THAT(cross_error_of("[loss]\nplugin = \"margin_loss\"\nlo = nan\n" + kExperiment + kDataset + kModel + kMetrics),
             Contains("loss.lo: expected float, got nan"));
  CHECK_THAT(cross_error_of("[[metrics]]\nplugin = \"iou\"\nthreshold = inf\n" + kExperiment + kDataset + kModel + kLoss),
             Contains("metrics.0.threshold"));
  CHECK_THAT(cross_error_of("[[dataset.augment]]\ntype = \"rotate\"\ndegrees = nan\n" + kValid), Contains("degrees"));
  // A parameter that says it accepts them does.
  const ExperimentConfig c =
      parse_cross("[loss]\nplugin = \"clipped\"\nmax_value = inf\n" + kExperiment + kDataset + kModel + kMetrics);
  CHECK(std::isinf(c.loss.params.real("max_value")));
  // The programmatic check refuses the same values.
  const Schema lr = {param_float("lr", 1e-3, "rate").above(0)};
  CHECK_THROWS_WITH(check_params(lr, {{"lr", std::numeric_limits<double>::infinity()}}, "optimizer"),
                    Contains("not accepted"));
}

TEST_CASE("config: very long names and devices are refused, not a stack overflow", "[config][errors]") {
  // Regression (found by tests/fuzz): std::regex recursed once per character, and a 66 kB
  // experiment name ended `chestlab validate` in a segmentation fault.
  const std::string long_name(200000, 'Z');
  const ExperimentConfig named = parse("[experiment]\nname = \"" + long_name + "\"\n" + kDataset + kModel + kLoss + kMetrics);
  CHECK(named.name == long_name);  // letters only: a valid (if long) name
  CHECK_THAT(error_of("[experiment]\nname = \"" + long_name + " x\"\n" + kDataset + kModel + kLoss + kMetrics),
             Contains("x.toml:2:") && Contains("experiment.name"));
  CHECK(parse(kValid + "[train]\ndevice = \"cuda:" + std::string(200000, '7') + "\"\n").train.device.size() == 200005);
  CHECK_THAT(error_of(kValid + "[train]\ndevice = \"cuda:" + std::string(200000, '7') + "x\"\n"),
             Contains("train.device"));
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"}) CHECK(parse(kValid + "[train]\ndevice = \"" + ok + "\"\n").train.device == ok);
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "cuda:1a", "CPU", " cpu"})
    CHECK_THAT(error_of(kValid + "[train]\ndevice = \"" + bad + "\"\n"), Contains("train.device"));
  for (const char* bad : {"a b", "a/b", "é"}) CHECK_THAT(error_of("[experiment]\nname = \"" + std::string(bad) + "\"\n" + kDataset + kModel + kLoss + kMetrics), Contains("experiment.name"));
}

namespace {

// The text hash() was taken of before [cv] seed, [train] seed, [cv] splits, [train]
// precision and [cv] repeats existed: the resolved file without those keys and without the
// output-only keys.
std::string text_before_the_new_keys(const ExperimentConfig& config) {
  std::istringstream lines(config.resolved_toml());
  std::string section, out;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.front() == '[') section = line;
    const bool new_key = (section == "[train]" || section == "[cv]") && line.rfind("seed = ", 0) == 0;
    const bool output_only = line.rfind("tensorboard", 0) == 0;
    const bool default_precision = section == "[train]" && line == "precision = \"fp32\"";
    const bool default_repeats = section == "[cv]" && line == "repeats = 1";
    if (new_key || output_only || default_precision || default_repeats ||
        (section == "[cv]" && line == "splits = \"\""))
      continue;
    out += line + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("config: train.tensorboard keys are recorded but are not part of the hash", "[config][resolved][tensorboard]") {
  const ExperimentConfig plain = parse(kValid);
  CHECK_FALSE(plain.train.tensorboard);
  CHECK(plain.train.tensorboard_every == 10);
  const ExperimentConfig on = parse(kValid + "[train]\ntensorboard = true\ntensorboard_every = 3\n");
  CHECK(on.train.tensorboard);
  CHECK(on.train.tensorboard_every == 3);
  // Output only: the same hash, hence the same run ids, as without them.
  CHECK(on.hash() == plain.hash());
  CHECK_THAT(on.resolved_toml(), Contains("tensorboard = true\ntensorboard_every = 3\n"));
  CHECK_THAT(plain.resolved_toml(), Contains("deterministic = true\ntensorboard = false\ntensorboard_every = 10\n"));
  // Read back (resume, rerun): the keys survive.
  const ExperimentConfig again = parse(on.resolved_toml());
  CHECK(again.train.tensorboard);
  CHECK(again.train.tensorboard_every == 3);
  // The hash is that of the resolved text without the output-only lines (nor the seeds that
  // follow the experiment seed): what it was before these keys existed, so files that do not
  // set them keep their hashes.
  CHECK(plain.hash() == to_hex(fnv1a64(text_before_the_new_keys(plain)), 12));
  CHECK(is_output_only_key("train.tensorboard"));
  CHECK_FALSE(is_output_only_key("train.epochs"));
  // Checked like every key, at its position.
  CHECK(error_of(kValid + "[train]\ntensorboard_every = -1\n") ==
        "x.toml:13:21: train.tensorboard_every: expected integer >= 0, got -1");
}

TEST_CASE("config: train.precision is recorded, and hashed unless fp32", "[config][resolved][precision]") {
  const ExperimentConfig plain = parse(kValid);
  CHECK(plain.train.precision == "fp32");
  CHECK_THAT(plain.resolved_toml(), Contains("\nprecision = \"fp32\"\n"));
  const ExperimentConfig bf16 = parse(kValid + "[train]\nprecision = \"bf16\"\n");
  CHECK(bf16.train.precision == "bf16");
  // Other arithmetic, other numbers: another run id.
  CHECK(bf16.hash() != plain.hash());
  CHECK(parse(kValid, {"train.precision=\"fp16\""}).hash() != bf16.hash());
  // Read back (resume, rerun): it survives.
  const ExperimentConfig again = parse(bf16.resolved_toml());
  CHECK(again.train.precision == "bf16");
  CHECK(again.hash() == bf16.hash());
  CHECK_THAT(error_of(kValid + "[train]\nprecision = \"fp8\"\n"),
             Contains("train.precision") && Contains("fp32") && Contains("bf16") && Contains("fp16"));
}

// ---- [cv] seed, [train] seed, [cv] splits ------------------------------------------------

TEST_CASE("config: [cv] seed and [train] seed follow the experiment seed unless set", "[config][seeds]") {
  const ExperimentConfig plain = parse(kValid);
  CHECK(plain.seed == 42);
  CHECK(plain.fold_seed() == 42);
  CHECK(plain.training_seed() == 42);
  // --set experiment.seed moves both while neither is set...
  const ExperimentConfig moved = parse(kValid, {"experiment.seed=9"});
  CHECK(moved.fold_seed() == 9);
  CHECK(moved.training_seed() == 9);
  // ...and only the unset one when one is.
  const ExperimentConfig pinned = parse(kValid + "[cv]\nseed = 5\n", {"experiment.seed=9", "train.seed=11"});
  CHECK(pinned.fold_seed() == 5);
  CHECK(pinned.training_seed() == 11);
  CHECK(pinned.seed == 9);

  // The resolved file says which seed made the folds and which trained, so that resume and
  // rerun use them whatever the experiment seed.
  const std::string resolved = pinned.resolved_toml();
  CHECK_THAT(resolved, Contains("[cv]\nmode = \"kfold\"\nfolds = 5\nrepeats = 1\nstratify = true\nseed = 5\nsplits = \"\"\n"));
  CHECK_THAT(resolved, Contains("tensorboard_every = 10\nseed = 11\n"));
  const ExperimentConfig again = parse(resolved);
  CHECK(again.fold_seed() == 5);
  CHECK(again.training_seed() == 11);
  CHECK(again.hash() == pinned.hash());
  CHECK_THAT(error_of(kValid + "[cv]\nseed = -1\n"), Contains("cv.seed: expected integer >= 0, got -1"));
}

TEST_CASE("config: files that set neither seed nor splits keep the hash they had", "[config][seeds]") {
  // The hash text is the one of before: the run ids of existing runs and sweeps stand.
  for (const std::string& text : {kValid, kValid + "[cv]\nfolds = 3\n[train]\nepochs = 2\n",
                                  kExperiment + "seed = 7\n" + kDataset + kModel + kLoss + kMetrics}) {
    const ExperimentConfig config = parse(text);
    CHECK(config.hash() == to_hex(fnv1a64(text_before_the_new_keys(config)), 12));
  }
  // A seed set to the experiment seed changes nothing, so neither does its hash; another does.
  const std::string base = parse(kValid).hash();
  CHECK(parse(kValid + "[cv]\nseed = 42\n[train]\nseed = 42\n").hash() == base);
  CHECK(parse(kValid, {"cv.seed=43"}).hash() != base);
  CHECK(parse(kValid, {"train.seed=43"}).hash() != base);
  CHECK(parse(kValid, {"cv.seed=43"}).hash() != parse(kValid, {"train.seed=43"}).hash());
  // The recorded form of an old file (both seeds written out) hashes as the old file did.
  CHECK(parse(parse(kValid).resolved_toml()).hash() == base);
}

TEST_CASE("config: [cv] splits resolves against the file's folder and enters the hash by content",
          "[config][seeds][split_file]") {
  const std::filesystem::path dir = test::scratch_dir("config_splits");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
  };
  write("a.csv", "id,fold\nx,0\ny,1\n");
  write("b.csv", "fold,id\n1,y\n0,x\n");  // the same split
  write("c.csv", "id,fold\nx,1\ny,0\n");  // another
  const auto at = [&](const std::string& splits) {
    return parse_experiment(kValid + "[cv]\nsplits = \"" + splits + "\"\n", "x.toml", dir.string(), {}, catalog());
  };
  CHECK(at("a.csv").splits_path() == (dir / "a.csv").string());
  CHECK(at((dir / "a.csv").string()).splits_path() == (dir / "a.csv").string());
  CHECK(parse(kValid).splits_path().empty());
  CHECK(at("a.csv").hash() == at("b.csv").hash());
  CHECK(at("a.csv").hash() != at("c.csv").hash());
  CHECK(at("a.csv").hash() != parse(kValid).hash());
  CHECK_THAT(at("a.csv").resolved_toml(), Contains("splits = \"a.csv\"\n"));
  // Reading the config does not need the file (predict re-reads recorded configs); the hash does.
  const ExperimentConfig gone = at("gone.csv");
  CHECK_THROWS_AS(gone.hash(), DataError);
}

// ---- [cv] repeats ---------------------------------------------------------------------------

TEST_CASE("config: [cv] repeats, its fold models and seeds; hashed unless 1", "[config][repeats]") {
  const ExperimentConfig plain = parse(kValid);
  CHECK(plain.cv.repeats == 1);
  CHECK(plain.cv.fold_models() == 5);
  const ExperimentConfig three = parse(kValid, {"cv.repeats=3"});
  CHECK(three.cv.fold_models() == 15);
  // Repeat 0 is the assignment without repeats; the others have seeds of their own.
  CHECK(three.repeat_fold_seed(0) == plain.fold_seed());
  CHECK(three.repeat_fold_seed(1) != three.repeat_fold_seed(0));
  CHECK(three.repeat_fold_seed(2) != three.repeat_fold_seed(1));
  CHECK(parse(kValid, {"cv.repeats=3", "cv.seed=11"}).repeat_fold_seed(1) != three.repeat_fold_seed(1));
  CHECK(three.hash() != plain.hash());
  CHECK(parse(kValid, {"cv.repeats=1"}).hash() == plain.hash());
  CHECK_THAT(three.resolved_toml(), Contains("\nfolds = 5\nrepeats = 3\n"));
  CHECK(parse(three.resolved_toml()).cv.repeats == 3);
  // run_folds counts fold models.
  CHECK(parse(kValid, {"cv.repeats=3", "cv.run_folds=[14]"}).cv.run_folds == std::vector<std::int64_t>{14});
  CHECK_THAT(error_of(kValid, {"cv.repeats=3", "cv.run_folds=[15]"}),
             Contains("fold 15 does not exist: fold models are numbered 0 to 14 (cv.folds = 5 x cv.repeats = 3)"));
  CHECK_THAT(error_of(kValid, {"cv.repeats=2", "cv.mode=\"holdout\""}),
             Contains("cv.repeats: repeats = 2 needs mode = \"kfold\""));
  CHECK_THAT(error_of(kValid, {"cv.repeats=0"}), Contains("cv.repeats"));
  CHECK_THAT(error_of(kValid, {"cv.repeats=101"}), Contains("cv.repeats"));
}

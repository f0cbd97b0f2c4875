// Weights in and out of PyTorch files: `chestlab export` read by Python's torch.load (and
// the documented snippet run as written), `[model] init` reading what torch.save wrote,
// with renaming, partial loading and the listing of what does not fit. Needs Debian's
// python3-torch; skips with a message without it.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chestlab/errors.h"
#include "chestlab/host/experiment.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/torch_file.h"
#include "chestlab/engine/runfile.h"
#include "support.h"
#include "torch_helpers.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::test;

namespace {

std::string python_with_torch() {
  for (const char* python : {"/usr/bin/python3", "python3"})
    if (run_command(std::string(python) + " -c 'import torch, h5py'") == 0) return python;
  return {};
}

#define REQUIRE_PYTHON_TORCH(var)                                                                   \
  const std::string var = python_with_torch();                                                      \
  if (var.empty()) {                                                                                \
    WARN("SKIPPED: no python3 with torch and h5py (Debian: apt-get install python3-torch python3-h5py)"); \
    return;                                                                                         \
  }

const char* kToml = R"(
[experiment]
name = "weights"
seed = 5

[dataset]
plugin = "synthetic_cxr"
count = 10
image_size = 32

[model]
plugin = "resnet_seg"
channels = 4
depth = 2
blocks = 1

[loss]
plugin = "bce"

[[metrics]]
plugin = "mean_iou"

[train]
epochs = 1
batch_size = 4
workers = 1
threads = 2

[cv]
mode = "holdout"
)";

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The ```python block after the export-snippet marker of docs/results-format.md.
std::string doc_snippet() {
  const std::string doc = read_text(source_dir() / "docs" / "results-format.md");
  const auto marker = doc.find("<!-- export-snippet");
  REQUIRE(marker != std::string::npos);
  const auto begin = doc.find("```python\n", marker);
  REQUIRE(begin != std::string::npos);
  const auto end = doc.find("```", begin + 10);
  return doc.substr(begin + 10, end - begin - 10);
}

int python(const std::string& py, const fs::path& script, const std::string& code, const std::string& args,
           std::string* out) {
  std::ofstream(script) << code;
  return run_command(py + " " + shell_quote(script.string()) + " " + args, out);
}

}  // namespace

TEST_CASE("torch files: export for torch.load, init from torch.save, errors listed", "[torch_file][e2e]") {
  REQUIRE_PYTHON_TORCH(py);
  const fs::path dir = scratch_dir("torch_file");
  const fs::path toml = dir / "weights.toml";
  std::ofstream(toml) << kToml;
  std::string log;
  const std::string exe = shell_quote(chestlab_exe());
  REQUIRE(run_command(exe + " run " + shell_quote(toml.string()) + " --output " + shell_quote((dir / "out").string()) +
                          " --quiet",
                      &log) == 0);
  const fs::path run_file = only_run_file(dir / "out");

  // ---- export: the documented snippet, and every tensor equal to the run file's ----
  const fs::path pt = dir / "model.pt";
  REQUIRE(run_command(exe + " export --run " + shell_quote(run_file.string()) + " --out " + shell_quote(pt.string()),
                      &log) == 0);  // one fold: --fold may be left out
  CHECK_THAT(log, Catch::Contains("wrote") && Catch::Contains("fold 0"));
  std::string snippet = doc_snippet();
  const auto at = snippet.find("\"model.pt\"");
  REQUIRE(at != std::string::npos);
  snippet.replace(at, 10, "\"" + pt.string() + "\"");
  std::string out;
  REQUIRE(python(py, dir / "snippet.py", snippet, "", &out) == 0);
  CHECK_THAT(out, Catch::Contains("stem.weight (4, 1, 3, 3)") && Catch::Contains("head.conv.bias (1,)"));

  const char* compare_py = R"(
import sys, collections, numpy, torch, h5py
state = torch.load(sys.argv[1])
assert isinstance(state, dict), type(state)
with h5py.File(sys.argv[2], "r") as f:
    weights = f["folds/0/weights"]
    assert sorted(state) == sorted(weights), (sorted(state), sorted(weights))
    for name, t in state.items():
        assert t.dtype == torch.float32 and tuple(t.shape) == weights[name].shape, name
        assert torch.equal(t, torch.from_numpy(numpy.asarray(weights[name][()]))), name
# A genuine state_dict (an OrderedDict with _metadata, as Module.state_dict returns) of doubled
# weights, with BatchNorm's counters as int64, in a checkpoint under "model" with DataParallel's
# "module." prefix, and plain.
sd = collections.OrderedDict()
sd._metadata = collections.OrderedDict([("", {"version": 1})])
for name, t in state.items():
    sd[name] = torch.tensor(7) if name.endswith("num_batches_tracked") else 2 * t
torch.save(sd, sys.argv[3] + "/plain.pt")
torch.save({"model": collections.OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 3},
           sys.argv[3] + "/checkpoint.pt")
bad = collections.OrderedDict(sd)
bad["stem.weight"] = torch.zeros(8, 1, 3, 3)
del bad["head.conv.bias"]
bad["extra.weight"] = torch.zeros(2)
torch.save(bad, sys.argv[3] + "/bad.pt")
torch.save(sd, sys.argv[3] + "/legacy.pt", _use_new_zipfile_serialization=False)
# Shared storage and offsets: views of one tensor, int and half dtypes.
base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
torch.save({"view": base[1:3, 2:5], "t": base.t(), "i": torch.tensor([[-3, 4]], dtype=torch.int16),
            "h": torch.tensor([0.5, -2.0], dtype=torch.float16), "n": 3, "s": "x"}, sys.argv[3] + "/views.pt")
print("ok")
)";
  const int compared = python(py, dir / "compare.py", compare_py,
                              shell_quote(pt.string()) + " " + shell_quote(run_file.string()) + " " +
                                  shell_quote(dir.string()),
                              &out);
  INFO(out);
  REQUIRE(compared == 0);

  // ---- read_torch_file: views, dtypes, non-tensor values skipped ----
  const NamedTensors views = read_torch_file((dir / "views.pt").string());
  REQUIRE(views.size() == 4);
  CHECK(views[0].first == "view");
  const auto base = torch::arange(24, torch::kFloat64).reshape({4, 6});
  CHECK(torch::equal(views[0].second, base.slice(0, 1, 3).slice(1, 2, 5)));
  CHECK(torch::equal(views[1].second, base.t()));
  CHECK(views[2].second.scalar_type() == torch::kInt16);
  CHECK(views[2].second[0][0].item<int>() == -3);
  CHECK(views[3].second.scalar_type() == torch::kFloat16);
  CHECK(views[3].second[1].item<float>() == -2.0f);

  // ---- [model] init: the doubled weights land in the model ----
  auto registry = std::make_shared<PluginRegistry>();
  registry->discover();
  const RunInfo run = read_run(run_file.string(), LoadWeights::Yes);
  auto model_with = [&](std::vector<std::string> sets) {
    Experiment experiment(load_experiment(toml.string(), sets, *registry), registry);
    return experiment.make_model();
  };
  auto check_doubled = [&](Model& model) {
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : model.named_parameters()) tensors[p.key()] = p.value();
    for (const auto& b : model.named_buffers()) tensors[b.key()] = b.value();
    for (const NamedArray& a : run.fold(0)->weights) {
      INFO(a.name);
      const torch::Tensor t = tensors.at(a.name);
      if (a.name.find("num_batches_tracked") != std::string::npos) {
        CHECK(t.item<std::int64_t>() == 7);
      } else {
        const auto expected = 2 * torch::from_blob(const_cast<float*>(a.values.data()), a.shape, torch::kFloat32);
        CHECK(torch::equal(t, expected));
      }
    }
  };
  check_doubled(*model_with({"model.init=plain.pt"}));  // relative to the experiment file
  check_doubled(*model_with({"model.init=checkpoint.pt", "model.init_rename=[\"model.module.=\"]"}));

  // ---- what does not fit is listed, with exit code 2 from the command line ----
  try {
    model_with({"model.init=bad.pt"});
    FAIL("bad.pt was accepted");
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("stem.weight: model [4, 1, 3, 3], file [8, 1, 3, 3]"));
    CHECK_THAT(what, Catch::Contains("missing from the file") && Catch::Contains("head.conv.bias"));
    CHECK_THAT(what, Catch::Contains("unexpected") && Catch::Contains("extra.weight"));
  }
  try {
    model_with({"model.init=bad.pt", "model.init_partial=true"});
    FAIL("a shape mismatch was accepted with init_partial");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("shape mismatch") && !Catch::Contains("extra.weight"));
  }
  CHECK_THROWS_WITH(model_with({"model.init=checkpoint.pt"}), Catch::Contains("model.module.stem.weight"));
  CHECK_THROWS_WITH(model_with({"model.init=legacy.pt"}), Catch::Contains("legacy.pt") && Catch::Contains("zip"));
  CHECK_THROWS_AS(model_with({"model.init=missing.pt"}), DataError);
  REQUIRE(run_command(exe + " validate " + shell_quote(toml.string()) + " --set model.init=bad.pt", &out) == 2);
  CHECK_THAT(out, Catch::Contains("extra.weight"));
  REQUIRE(run_command(exe + " validate " + shell_quote(toml.string()) + " --set model.init=plain.pt", &out) == 0);
  CHECK(run_command(exe + " validate " + shell_quote(toml.string()) + " --set 'model.init_rename=[\"nothing\"]'",
                    &out) == 2);
  CHECK_THAT(out, Catch::Contains("model.init_rename"));

  // ---- export errors ----
  CHECK(run_command(exe + " export --run " + shell_quote(run_file.string()) + " --fold 3 --out x.pt", &out) == 3);
  CHECK_THAT(out, Catch::Contains("fold 3"));
  CHECK(run_command(exe + " export --run " + shell_quote(run_file.string()), &out) == 2);
}

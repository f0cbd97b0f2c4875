// Components that throw on request, for the tests of how plugin errors reach the user
// (app/tests/test_plugin_errors.cpp). One library provides a dataset, model, loss, metric
// and scheduler, each named "throwing", that work normally unless the environment says
//   CHESTLAB_TEST_THROW=<kind>.<entry>=<what>      e.g. model.forward=c10
// with <what> one of: config (ConfigError), data (DataError), plugin (PluginError),
// param (a ParamError: asking for an undeclared parameter), c10 (TORCH_CHECK failure),
// std (std::runtime_error), other (an int: not a std::exception). The environment, not a
// parameter, so that one recorded run can be made to fail under predict and rerun too.
#include <torch/torch.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "chestlab/sdk.h"

namespace {

using namespace chestlab;

void maybe_throw(const char* where) {
  const char* spec = std::getenv("CHESTLAB_TEST_THROW");
  if (!spec) return;
  const std::string s(spec);
  const auto eq = s.find('=');
  if (eq == std::string::npos || s.substr(0, eq) != where) return;
  const std::string what = s.substr(eq + 1);
  const std::string message = "injected " + what + " error in " + where;
  if (what == "config") throw ConfigError(message);
  if (what == "data") throw DataError("throwing-sample.dcm", message);
  if (what == "plugin") throw PluginError(message);
  if (what == "param") Params().integer("undeclared_parameter");
  if (what == "c10") TORCH_CHECK(false, message);
  if (what == "std") throw std::runtime_error(message);
  if (what == "other") throw 42;
}

// Small squares on a dark background; label 1 when the square is there.
class ThrowingDataset : public Dataset {
 public:
  ThrowingDataset(std::int64_t count, std::int64_t size) : count_(count), size_(size) {}
  std::size_t size() const override {
    maybe_throw("dataset.size");
    return static_cast<std::size_t>(count_);
  }
  SampleInfo info(std::size_t i) const override {
    maybe_throw("dataset.info");
    return {"throwing-" + std::to_string(i), "patient-" + std::to_string(i), static_cast<std::int64_t>(i % 2)};
  }
  Sample get(std::size_t i) const override {
    maybe_throw("dataset.get");
    Sample s;
    s.image = torch::zeros({1, size_, size_});
    s.mask = torch::zeros({1, size_, size_});
    if (i % 2) {
      const std::int64_t a = size_ / 4, b = size_ / 2 + static_cast<std::int64_t>(i % 3);
      s.image.index_put_({0, torch::indexing::Slice(a, b), torch::indexing::Slice(a, b)}, 1.0);
      s.mask.index_put_({0, torch::indexing::Slice(a, b), torch::indexing::Slice(a, b)}, 1.0);
    }
    const SampleInfo meta = ThrowingDataset::info(i);
    s.id = meta.id;
    s.group = meta.group;
    s.label = meta.label;
    s.original_height = s.original_width = size_;
    return s;
  }
  std::vector<std::string> class_names() const override { return {"empty", "square"}; }

 private:
  std::int64_t count_, size_;
};

struct ThrowingModel : Model {
  torch::nn::Conv2d conv{nullptr};
  ThrowingModel() { conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 1, 3).padding(1))); }
  ModelOutput forward(const torch::Tensor& x) override {
    maybe_throw("model.forward");
    return {conv->forward(x), {}, {}};
  }
  Prediction predict(const ModelOutput& output) override {
    maybe_throw("model.predict");
    return Model::predict(output);
  }
};

struct ThrowingLoss : Loss {
  torch::Tensor compute(const ModelOutput& out, const Batch& batch) override {
    maybe_throw("loss.compute");
    return torch::binary_cross_entropy_with_logits(out.mask_logits, batch.masks);
  }
};

// Mean pixel agreement at 0.5.
struct ThrowingMetric : Metric {
  double sum = 0, count = 0;
  void reset() override {
    maybe_throw("metric.reset");
    sum = count = 0;
  }
  void update(const Prediction& p, const Batch& batch) override {
    maybe_throw("metric.update");
    sum += ((p.mask_prob > 0.5).to(torch::kFloat) == batch.masks).to(torch::kFloat).mean().item<double>() *
           static_cast<double>(batch.size());
    count += static_cast<double>(batch.size());
  }
  double compute() const override {
    maybe_throw("metric.compute");
    return count > 0 ? sum / count : 0.0;
  }
};

struct ThrowingScheduler : Scheduler {
  double lr(const ScheduleState& state) override {
    maybe_throw("scheduler.lr");
    return state.base_lr;
  }
  void observe(std::int64_t, double) override { maybe_throw("scheduler.observe"); }
};

ComponentInfo info_of(Kind kind, const char* description) {
  ComponentInfo info;
  info.kind = kind;
  info.name = "throwing";
  info.version = "0.0.1";
  info.description = description;
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  ComponentInfo dataset = info_of(Kind::Dataset, "test dataset: squares; throws where CHESTLAB_TEST_THROW says");
  dataset.params = {param_int("count", 12, "samples").range(2, 1000),
                    param_int("image_size", 16, "side in pixels").range(8, 256)};
  registrar.add_dataset(dataset, [](const Params& p, const DatasetContext&) {
    maybe_throw("dataset.factory");
    return std::make_shared<ThrowingDataset>(p.integer("count"), p.integer("image_size"));
  });
  registrar.add_model(info_of(Kind::Model, "test model: one convolution; throws on request"),
                      [](const Params&, const ModelContext&) {
                        maybe_throw("model.factory");
                        return std::make_shared<ThrowingModel>();
                      });
  registrar.add_loss(info_of(Kind::Loss, "test loss: BCE; throws on request"), [](const Params&) {
    maybe_throw("loss.factory");
    return std::make_shared<ThrowingLoss>();
  });
  registrar.add_metric(info_of(Kind::Metric, "test metric: pixel agreement; throws on request"), [](const Params&) {
    maybe_throw("metric.factory");
    return std::make_shared<ThrowingMetric>();
  });
  registrar.add_scheduler(info_of(Kind::Scheduler, "test schedule: constant; throws on request"), [](const Params&) {
    maybe_throw("scheduler.factory");
    return std::make_shared<ThrowingScheduler>();
  });
}

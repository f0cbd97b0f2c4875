#include "guarded_components.h"

#include "chestlab/host/plugin_guard.h"

namespace chestlab {

namespace {

class GuardedDataset final : public Dataset {
 public:
  GuardedDataset(std::shared_ptr<Dataset> inner, std::string name) : inner_(std::move(inner)), name_(std::move(name)) {}
  std::size_t size() const override {
    return plugin_call(Kind::Dataset, name_, "size", [&] { return inner_->size(); });
  }
  SampleInfo info(std::size_t index) const override {
    return plugin_call(Kind::Dataset, name_, "info", [&] { return inner_->info(index); });
  }
  Sample get(std::size_t index) const override {
    return plugin_call(Kind::Dataset, name_, "get", [&] { return inner_->get(index); });
  }
  std::vector<std::string> class_names() const override {
    return plugin_call(Kind::Dataset, name_, "class_names", [&] { return inner_->class_names(); });
  }

 private:
  std::shared_ptr<Dataset> inner_;
  std::string name_;
};

class GuardedLoss final : public Loss {
 public:
  GuardedLoss(std::shared_ptr<Loss> inner, std::string name) : inner_(std::move(inner)), name_(std::move(name)) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override {
    return plugin_call(Kind::Loss, name_, "compute", [&] { return inner_->compute(output, batch); });
  }

 private:
  std::shared_ptr<Loss> inner_;
  std::string name_;
};

class GuardedMetric final : public Metric {
 public:
  GuardedMetric(std::shared_ptr<Metric> inner, std::string name) : inner_(std::move(inner)), name_(std::move(name)) {}
  void reset() override {
    plugin_call(Kind::Metric, name_, "reset", [&] { inner_->reset(); });
  }
  void update(const Prediction& prediction, const Batch& batch) override {
    plugin_call(Kind::Metric, name_, "update", [&] { inner_->update(prediction, batch); });
  }
  double compute() const override {
    return plugin_call(Kind::Metric, name_, "compute", [&] { return inner_->compute(); });
  }
  bool makes_boxes() const override {
    return plugin_call(Kind::Metric, name_, "makes_boxes", [&] { return inner_->makes_boxes(); });
  }
  std::vector<ScoredBox> boxes(const Prediction& prediction, std::int64_t index) const override {
    return plugin_call(Kind::Metric, name_, "boxes", [&] { return inner_->boxes(prediction, index); });
  }

 private:
  std::shared_ptr<Metric> inner_;
  std::string name_;
};

class GuardedScheduler final : public Scheduler {
 public:
  GuardedScheduler(std::shared_ptr<Scheduler> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}
  StepUnit unit() const override {
    return plugin_call(Kind::Scheduler, name_, "unit", [&] { return inner_->unit(); });
  }
  double lr(const ScheduleState& state) override {
    return plugin_call(Kind::Scheduler, name_, "lr", [&] { return inner_->lr(state); });
  }
  void observe(std::int64_t epoch, double monitored) override {
    plugin_call(Kind::Scheduler, name_, "observe", [&] { inner_->observe(epoch, monitored); });
  }
  std::string save_state() const override {
    return plugin_call(Kind::Scheduler, name_, "save_state", [&] { return inner_->save_state(); });
  }
  void load_state(const std::string& state) override {
    plugin_call(Kind::Scheduler, name_, "load_state", [&] { inner_->load_state(state); });
  }

 private:
  std::shared_ptr<Scheduler> inner_;
  std::string name_;
};

}  // namespace

std::shared_ptr<Dataset> guard_dataset(std::shared_ptr<Dataset> inner, std::string name) {
  return inner ? std::make_shared<GuardedDataset>(std::move(inner), std::move(name)) : nullptr;
}
std::shared_ptr<Loss> guard_loss(std::shared_ptr<Loss> inner, std::string name) {
  return inner ? std::make_shared<GuardedLoss>(std::move(inner), std::move(name)) : nullptr;
}
std::shared_ptr<Metric> guard_metric(std::shared_ptr<Metric> inner, std::string name) {
  return inner ? std::make_shared<GuardedMetric>(std::move(inner), std::move(name)) : nullptr;
}
std::shared_ptr<Scheduler> guard_scheduler(std::shared_ptr<Scheduler> inner, std::string name) {
  return inner ? std::make_shared<GuardedScheduler>(std::move(inner), std::move(name)) : nullptr;
}

}  // namespace chestlab

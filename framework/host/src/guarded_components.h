// Proxies the registry hands out instead of a plugin's own dataset, loss, metric and
// scheduler: each call goes through plugin_call, so any caller (loader workers, trainer,
// predict, validate, tools) gets host errors naming the component, and none needs its own
// try/catch. Not for models: a model is a LibTorch module and a proxy would rename its
// parameters (see plugin_guard.h).
#pragma once

#include <memory>
#include <string>

#include "chestlab/dataset.h"
#include "chestlab/loss.h"
#include "chestlab/metric.h"
#include "chestlab/scheduler.h"

namespace chestlab {

std::shared_ptr<Dataset> guard_dataset(std::shared_ptr<Dataset> inner, std::string name);
std::shared_ptr<Loss> guard_loss(std::shared_ptr<Loss> inner, std::string name);
std::shared_ptr<Metric> guard_metric(std::shared_ptr<Metric> inner, std::string name);
std::shared_ptr<Scheduler> guard_scheduler(std::shared_ptr<Scheduler> inner, std::string name);

}  // namespace chestlab

// How a plugin library exports its components. A library defines exactly one
//
//   CHESTLAB_PLUGIN(registrar) {
//     registrar.add_model(info, [](const Params& p, const ModelContext& c) { ... });
//   }
//
// The macro exports two C symbols: `chestlab_plugin_abi`, a plain struct the host reads
// before trusting anything else in the library, and `chestlab_plugin_register`.
#pragma once

#include <torch/version.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "chestlab/component.h"
#include "chestlab/dataset.h"
#include "chestlab/loss.h"
#include "chestlab/metric.h"
#include "chestlab/model.h"
#include "chestlab/params.h"
#include "chestlab/scheduler.h"

// Bumped whenever a class in this SDK changes layout or virtual functions.
#define CHESTLAB_SDK_ABI_VERSION 3

namespace chestlab {

using DatasetFactory = std::function<std::shared_ptr<Dataset>(const Params&, const DatasetContext&)>;
using ModelFactory = std::function<std::shared_ptr<Model>(const Params&, const ModelContext&)>;
// A dataset over every image of a folder, without labels, read exactly as the dataset reads
// its training images (same decoding and preprocessing): what `chestlab predict` runs a
// recorded run's models on. `params` are the run's dataset parameters.
using FolderDatasetFactory =
    std::function<std::shared_ptr<Dataset>(const Params&, const DatasetContext&, const std::string& folder)>;
using LossFactory = std::function<std::shared_ptr<Loss>(const Params&)>;
using SchedulerFactory = std::function<std::shared_ptr<Scheduler>(const Params&)>;
using MetricFactory = std::function<std::shared_ptr<Metric>(const Params&)>;

class Registrar {
 public:
  virtual ~Registrar() = default;
  // `folder`: how to read a folder of unlabelled images (optional; without it, `predict`
  // refuses runs of this dataset).
  virtual void add_dataset(ComponentInfo info, DatasetFactory factory, FolderDatasetFactory folder = {}) = 0;
  virtual void add_model(ComponentInfo info, ModelFactory factory) = 0;
  virtual void add_loss(ComponentInfo info, LossFactory factory) = 0;
  virtual void add_scheduler(ComponentInfo info, SchedulerFactory factory) = 0;
  virtual void add_metric(ComponentInfo info, MetricFactory factory) = 0;
};

// Plain data only: readable even when the plugin was built against another SDK.
struct PluginAbi {
  std::uint32_t magic;          // kPluginMagic
  std::uint32_t sdk_abi;        // CHESTLAB_SDK_ABI_VERSION
  char torch_version[32];       // TORCH_VERSION at build time, e.g. "1.13.0"
  std::int32_t cxx11_abi;       // _GLIBCXX_USE_CXX11_ABI
  std::int32_t reserved;
};
constexpr std::uint32_t kPluginMagic = 0x43484c42;  // "CHLB"

}  // namespace chestlab

#ifndef _GLIBCXX_USE_CXX11_ABI
#define CHESTLAB_CXX11_ABI 0
#else
#define CHESTLAB_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#endif

// Tests build a deliberately incompatible plugin by overriding the stamped ABI version.
#ifndef CHESTLAB_PLUGIN_SDK_ABI_STAMP
#define CHESTLAB_PLUGIN_SDK_ABI_STAMP CHESTLAB_SDK_ABI_VERSION
#endif

#define CHESTLAB_PLUGIN(registrar_var)                                                        \
  extern "C" __attribute__((visibility("default"))) const ::chestlab::PluginAbi*             \
  chestlab_plugin_abi() {                                                                    \
    static const ::chestlab::PluginAbi abi = {::chestlab::kPluginMagic,                       \
                                              CHESTLAB_PLUGIN_SDK_ABI_STAMP, TORCH_VERSION,   \
                                              CHESTLAB_CXX11_ABI, 0};                         \
    return &abi;                                                                             \
  }                                                                                          \
  static void chestlab_register_components(::chestlab::Registrar&);                          \
  extern "C" __attribute__((visibility("default"))) void chestlab_plugin_register(           \
      ::chestlab::Registrar* registrar) {                                                    \
    chestlab_register_components(*registrar);                                                \
  }                                                                                          \
  static void chestlab_register_components(::chestlab::Registrar& registrar_var)

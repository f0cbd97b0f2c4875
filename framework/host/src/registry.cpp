#include "chestlab/host/registry.h"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <variant>

#include "chestlab/errors.h"
#include "chestlab/hash.h"
#include "chestlab/host/augment.h"
#include "chestlab/host/plugin_guard.h"
#include "chestlab/param_check.h"
#include "guarded_components.h"

namespace fs = std::filesystem;

namespace chestlab {

struct LoadedPlugin {
  boost::dll::shared_library library;
  std::string file;
};

namespace {

using Factory = std::variant<DatasetFactory, ModelFactory, LossFactory, SchedulerFactory, MetricFactory>;

// Members are destroyed in reverse order: the factory (code from the plugin) must go
// before the last reference to its library.
struct Registered {
  std::shared_ptr<LoadedPlugin> plugin;
  ComponentEntry entry;
  Factory factory;
  FolderDatasetFactory folder_reader;  // datasets only; may be empty
};

// Keeps the plugin library loaded for as long as `object` lives: the returned pointer
// shares ownership of a holder that releases the object first, then the library.
template <class T>
std::shared_ptr<T> tie_to_library(std::shared_ptr<T> object, std::shared_ptr<LoadedPlugin> plugin) {
  if (!object) return nullptr;
  struct Holder {
    std::shared_ptr<LoadedPlugin> plugin;  // destroyed last
    std::shared_ptr<T> object;
  };
  auto holder = std::make_shared<Holder>(Holder{std::move(plugin), std::move(object)});
  return std::shared_ptr<T>(holder, holder->object.get());
}

// A library, once loaded, stays loaded until the process ends. An exception a plugin throws
// may be of a type whose vtable and what() live in the plugin (chestlab's error types are
// header-only, and plugins are built with hidden visibility); when the registry or the last
// object of the library went away while that exception unwound, main's handler called into
// unmapped code and the program died of a segmentation fault instead of printing the error.
// Never unloading is also what most plugin hosts do: static destructors and thread-locals of
// a dlclose'd C++ library are a known hazard. (Intentionally leaked, so it is not destroyed
// at exit either.)
void keep_loaded_until_exit(std::shared_ptr<LoadedPlugin> plugin) {
  static auto* forever = new std::vector<std::shared_ptr<LoadedPlugin>>();
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  forever->push_back(std::move(plugin));
}

std::string major_minor(const std::string& version) {
  auto first = version.find('.');
  if (first == std::string::npos) return version;
  auto second = version.find('.', first + 1);
  return version.substr(0, second);
}

std::string check_abi(const PluginAbi& abi) {
  if (abi.magic != kPluginMagic) return "its ABI stamp is not a chestlab stamp";
  if (abi.sdk_abi != CHESTLAB_SDK_ABI_VERSION)
    return fmt::format("built against chestlab SDK ABI {}, this host has ABI {}: rebuild the plugin",
                       abi.sdk_abi, CHESTLAB_SDK_ABI_VERSION);
  std::string plugin_torch(abi.torch_version, strnlen(abi.torch_version, sizeof abi.torch_version));
  if (major_minor(plugin_torch) != major_minor(TORCH_VERSION))
    return fmt::format("built against LibTorch {}, this host uses LibTorch {}", plugin_torch, TORCH_VERSION);
  if (abi.cxx11_abi != CHESTLAB_CXX11_ABI)
    return fmt::format("built with _GLIBCXX_USE_CXX11_ABI={}, this host uses {}", abi.cxx11_abi,
                       CHESTLAB_CXX11_ABI);
  return {};
}

}  // namespace

struct PluginRegistry::Impl : Registrar {
  std::vector<std::shared_ptr<LoadedPlugin>> plugins;  // declared first: released last
  std::map<std::pair<Kind, std::string>, Registered> components;
  std::shared_ptr<LoadedPlugin> loading;  // set while a library's register function runs

  // The keys chestlab itself reads in a component's section; a parameter of the same name
  // could never be set.
  static const Schema& host_keys(Kind kind) {
    switch (kind) {
      case Kind::Dataset: return dataset_host_schema();
      case Kind::Scheduler: return scheduler_host_schema();
      case Kind::Metric: return metric_host_schema();
      default: return component_host_schema();
    }
  }

  void add(ComponentInfo info, Kind kind, Factory factory, FolderDatasetFactory folder_reader = {}) {
    info.kind = kind;
    for (const auto& param : info.params)
      for (const auto& host : host_keys(kind))
        if (param.name == host.name)
          throw PluginError(fmt::format("{}: {} '{}' declares parameter '{}', which the [{}] section reserves for "
                                        "chestlab itself; rename the parameter",
                                        loading->file, to_string(kind), info.name, param.name, to_string(kind)));
    auto key = std::make_pair(kind, info.name);
    auto it = components.find(key);
    if (it != components.end())
      throw PluginError(fmt::format("two plugins provide {} '{}': {} and {}", to_string(kind), info.name,
                                    it->second.entry.file, loading->file));
    components.emplace(key, Registered{loading, ComponentEntry{std::move(info), loading->file}, std::move(factory),
                                       std::move(folder_reader)});
  }
  void add_dataset(ComponentInfo i, DatasetFactory f, FolderDatasetFactory folder) override {
    add(std::move(i), Kind::Dataset, std::move(f), std::move(folder));
  }
  void add_model(ComponentInfo i, ModelFactory f) override { add(std::move(i), Kind::Model, std::move(f)); }
  void add_loss(ComponentInfo i, LossFactory f) override { add(std::move(i), Kind::Loss, std::move(f)); }
  void add_scheduler(ComponentInfo i, SchedulerFactory f) override {
    add(std::move(i), Kind::Scheduler, std::move(f));
  }
  void add_metric(ComponentInfo i, MetricFactory f) override { add(std::move(i), Kind::Metric, std::move(f)); }

  const Registered& get(Kind kind, const std::string& name) const {
    auto it = components.find({kind, name});
    if (it == components.end()) {
      std::string known;
      for (const auto& [key, reg] : components)
        if (key.first == kind) known += (known.empty() ? "" : ", ") + key.second;
      throw ConfigError(fmt::format("no {} plugin named '{}' (available: {})", to_string(kind), name,
                                    known.empty() ? "none" : known));
    }
    return it->second;
  }
};

PluginRegistry::PluginRegistry() : impl_(std::make_unique<Impl>()) {}
PluginRegistry::~PluginRegistry() = default;

std::vector<std::string> PluginRegistry::default_dirs() {
  std::vector<std::string> dirs;
  // An installed host finds <libdir>/chestlab/plugins beside itself; a host in a build
  // tree finds that build's plugin folder.
  boost::system::error_code ec;
  fs::path self = boost::dll::this_line_location(ec).string();
  fs::path installed = self.parent_path() / CHESTLAB_PLUGIN_INSTALL_SUBDIR;
  if (!ec && fs::is_directory(installed)) dirs.push_back(installed.string());
  else if (fs::is_directory(CHESTLAB_BUILD_PLUGIN_DIR)) dirs.push_back(CHESTLAB_BUILD_PLUGIN_DIR);
  if (const char* env = std::getenv("CHESTLAB_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty()) dirs.push_back(dir);
  }
  return dirs;
}

void PluginRegistry::discover(const std::vector<std::string>& extra_dirs) {
  std::vector<std::string> dirs = default_dirs();
  dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
  const std::string suffix = boost::dll::shared_library::suffix().string();
  for (const auto& dir : dirs) {
    if (!fs::is_directory(dir)) {
      problems_.push_back(dir + ": plugin folder does not exist");
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == suffix) files.push_back(e.path());
    std::sort(files.begin(), files.end());  // stable order: same errors, same listing
    for (const auto& file : files) {
      try {
        load_file(file.string());
      } catch (const PluginError& e) {
        // A duplicate component is ambiguous and stops everything; a library that is
        // merely incompatible is skipped so that the others still work.
        if (std::string(e.what()).rfind("two plugins provide", 0) == 0) throw;
        problems_.push_back(e.what());
      }
    }
  }
}

void PluginRegistry::load_file(const std::string& path) {
  std::string canonical = fs::weakly_canonical(path).string();
  for (const auto& p : impl_->plugins)
    if (p->file == canonical) return;  // the same folder listed twice
  auto plugin = std::make_shared<LoadedPlugin>();
  plugin->file = canonical;
  boost::system::error_code ec;
  plugin->library.load(canonical, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local, ec);
  if (ec) throw PluginError(fmt::format("{}: cannot load: {}", canonical, ec.message()));
  keep_loaded_until_exit(plugin);
  if (!plugin->library.has("chestlab_plugin_abi") || !plugin->library.has("chestlab_plugin_register"))
    throw PluginError(canonical + ": not a chestlab plugin (no chestlab_plugin_abi/chestlab_plugin_register symbols)");
  const PluginAbi* abi = plugin->library.get<const PluginAbi*()>("chestlab_plugin_abi")();
  if (std::string why = check_abi(*abi); !why.empty())
    throw PluginError(fmt::format("{}: incompatible plugin: {}", canonical, why));
  impl_->loading = plugin;
  auto before = impl_->components;
  try {
    plugin->library.get<void(Registrar*)>("chestlab_plugin_register")(impl_.get());
  } catch (const PluginError&) {
    impl_->components = std::move(before);  // all or nothing per library
    impl_->loading.reset();
    throw;
  } catch (const std::exception& e) {
    impl_->components = std::move(before);
    impl_->loading.reset();
    throw PluginError(fmt::format("{}: registering its components failed: {}", canonical, e.what()));
  } catch (...) {
    impl_->components = std::move(before);
    impl_->loading.reset();
    throw PluginError(canonical + ": registering its components failed: it threw something that is not a "
                                  "std::exception");
  }
  impl_->loading.reset();
  impl_->plugins.push_back(std::move(plugin));
}

std::vector<ComponentEntry> PluginRegistry::components() const {
  std::vector<ComponentEntry> out;
  for (const auto& [key, reg] : impl_->components) out.push_back(reg.entry);
  return out;
}

std::vector<std::pair<std::string, std::string>> PluginRegistry::libraries() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : impl_->plugins) out.emplace_back(p->file, file_digest(p->file));
  return out;
}

const ComponentInfo* PluginRegistry::find(Kind kind, const std::string& name) const {
  auto it = impl_->components.find({kind, name});
  return it == impl_->components.end() ? nullptr : &it->second.entry.info;
}

const ComponentEntry* PluginRegistry::entry(Kind kind, const std::string& name) const {
  auto it = impl_->components.find({kind, name});
  return it == impl_->components.end() ? nullptr : &it->second.entry;
}

std::vector<std::string> PluginRegistry::names(Kind kind) const {
  std::vector<std::string> out;
  for (const auto& [key, reg] : impl_->components)
    if (key.first == kind) out.push_back(key.second);
  return out;
}

const Schema* PluginRegistry::augmentation(const std::string& type) const {
  const AugmentationSpec* spec = find_augmentation(type);
  return spec ? &spec->schema : nullptr;
}

std::vector<std::string> PluginRegistry::augmentation_types() const { return augmentation_names(); }

Params PluginRegistry::params_for(Kind kind, const std::string& name,
                                  const std::map<std::string, ParamValue>& given) const {
  const Registered& reg = impl_->get(kind, name);
  return check_params(reg.entry.info.params, given, fmt::format("{} '{}'", to_string(kind), name),
                      reg.entry.info.checks);
}

// The factory runs guarded like every other call into the plugin (plugin_guard.h).
template <class FactoryT, class... Args>
static auto call_factory(const Registered& reg, Args&&... args) {
  const auto& factory = std::get<FactoryT>(reg.factory);
  const ComponentInfo& info = reg.entry.info;
  return tie_to_library(plugin_call(info.kind, info.name, "factory", [&] { return factory(args...); }), reg.plugin);
}

std::shared_ptr<Dataset> PluginRegistry::make_dataset(const std::string& name, const Params& params,
                                                      const DatasetContext& context) const {
  return guard_dataset(call_factory<DatasetFactory>(impl_->get(Kind::Dataset, name), params, context), name);
}
bool PluginRegistry::reads_folders(const std::string& dataset) const {
  return static_cast<bool>(impl_->get(Kind::Dataset, dataset).folder_reader);
}
std::shared_ptr<Dataset> PluginRegistry::make_folder_dataset(const std::string& name, const Params& params,
                                                             const DatasetContext& context,
                                                             const std::string& folder) const {
  const Registered& reg = impl_->get(Kind::Dataset, name);
  if (!reg.folder_reader)
    throw ConfigError(fmt::format("dataset '{}' cannot read a folder of unlabelled images (its plugin registers "
                                  "no folder reader), so its runs cannot predict on one",
                                  name));
  auto dataset =
      plugin_call(Kind::Dataset, name, "folder reader", [&] { return reg.folder_reader(params, context, folder); });
  return guard_dataset(tie_to_library(std::move(dataset), reg.plugin), name);
}
std::shared_ptr<Model> PluginRegistry::make_model(const std::string& name, const Params& params,
                                                  const ModelContext& context) const {
  return call_factory<ModelFactory>(impl_->get(Kind::Model, name), params, context);
}
std::shared_ptr<Loss> PluginRegistry::make_loss(const std::string& name, const Params& params) const {
  return guard_loss(call_factory<LossFactory>(impl_->get(Kind::Loss, name), params), name);
}
std::shared_ptr<Scheduler> PluginRegistry::make_scheduler(const std::string& name, const Params& params) const {
  return guard_scheduler(call_factory<SchedulerFactory>(impl_->get(Kind::Scheduler, name), params), name);
}
std::shared_ptr<Metric> PluginRegistry::make_metric(const std::string& name, const Params& params) const {
  return guard_metric(call_factory<MetricFactory>(impl_->get(Kind::Metric, name), params), name);
}

}  // namespace chestlab

// The plugin host: finds plugin libraries, checks they were built for this host, and
// makes components by kind and name. A library, once loaded, stays loaded until the
// process ends, so that nothing a plugin made or threw can outlive its code.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chestlab/engine/config.h"
#include "chestlab/plugin.h"

namespace chestlab {

struct LoadedPlugin;  // one dlopen'ed library

struct ComponentEntry {
  ComponentInfo info;
  std::string file;      // library that provides it
};

class PluginRegistry : public SchemaCatalog {
 public:
  PluginRegistry();
  ~PluginRegistry() override;
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  // Folders searched, in order: the build's (or installation's) plugin folder, then each
  // folder of $CHESTLAB_PLUGIN_PATH (':'-separated), then `extra_dirs`. Never the
  // current directory. Incompatible libraries are skipped and listed in problems();
  // two components of the same kind and name are an error naming both files.
  void discover(const std::vector<std::string>& extra_dirs = {});
  // Loads one library; throws PluginError naming the file and the reason.
  void load_file(const std::string& path);
  static std::vector<std::string> default_dirs();

  // Libraries that were found but refused, with why ("<file>: <reason>").
  const std::vector<std::string>& problems() const { return problems_; }
  std::vector<ComponentEntry> components() const;
  // (file, digest) of every loaded library, for the run file's environment.
  std::vector<std::pair<std::string, std::string>> libraries() const;

  // SchemaCatalog
  const ComponentInfo* find(Kind kind, const std::string& name) const override;
  std::vector<std::string> names(Kind kind) const override;
  const Schema* augmentation(const std::string& type) const override;
  std::vector<std::string> augmentation_types() const override;

  const ComponentEntry* entry(Kind kind, const std::string& name) const;
  // Validates `given` against the component's schema and fills defaults (throws ConfigError).
  Params params_for(Kind kind, const std::string& name,
                    const std::map<std::string, ParamValue>& given = {}) const;

  std::shared_ptr<Dataset> make_dataset(const std::string& name, const Params& params,
                                        const DatasetContext& context) const;
  // A dataset over the images of `folder`, read as `name` reads its training images (the
  // plugin's folder reader); ConfigError when the plugin has none.
  std::shared_ptr<Dataset> make_folder_dataset(const std::string& name, const Params& params,
                                               const DatasetContext& context, const std::string& folder) const;
  bool reads_folders(const std::string& dataset) const;
  std::shared_ptr<Model> make_model(const std::string& name, const Params& params,
                                    const ModelContext& context = {}) const;
  std::shared_ptr<Loss> make_loss(const std::string& name, const Params& params) const;
  std::shared_ptr<Scheduler> make_scheduler(const std::string& name, const Params& params) const;
  std::shared_ptr<Metric> make_metric(const std::string& name, const Params& params) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> problems_;
};

}  // namespace chestlab

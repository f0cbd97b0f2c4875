// Plugin discovery: loading, ABI guard, duplicates, non-plugins, lifetime.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "chestlab/errors.h"
#include "chestlab/host/registry.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {
std::string test_plugins(const std::string& folder) {
  return (fs::path(chestlab::test::test_plugin_dir()) / folder).string();
}
bool contains(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
  for (const auto& l : lines)
    if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("a compatible plugin is found, described and makes working components", "[registry]") {
  PluginRegistry registry;
  registry.discover({test_plugins("good")});
  const ComponentInfo* info = registry.find(Kind::Model, "tiny_test_model");
  REQUIRE(info != nullptr);
  CHECK(info->version == "0.0.1");
  CHECK(info->params.at(0).name == "channels");
  CHECK(registry.entry(Kind::Model, "tiny_test_model")->file.find("test_plugin_good") != std::string::npos);

  auto model = registry.make_model("tiny_test_model", registry.params_for(Kind::Model, "tiny_test_model",
                                                                           {{"channels", std::int64_t{3}}}));
  auto out = model->forward(torch::zeros({2, 1, 8, 8}));
  CHECK(out.mask_logits.sizes() == torch::IntArrayRef({2, 1, 8, 8}));
}

TEST_CASE("objects keep their plugin library loaded after the registry is gone", "[registry]") {
  std::shared_ptr<Model> model;
  {
    PluginRegistry registry;
    registry.discover({test_plugins("good")});
    model = registry.make_model("tiny_test_model", registry.params_for(Kind::Model, "tiny_test_model"));
  }
  // The vtable and code of TinyModel live in the plugin: calling it would crash if unloaded.
  auto out = model->forward(torch::ones({1, 1, 4, 4}));
  CHECK(out.mask_logits.size(1) == 1);
}

TEST_CASE("a plugin built for another SDK ABI is refused with file and reason", "[registry]") {
  PluginRegistry registry;
  registry.discover({test_plugins("abi_mismatch")});
  CHECK(registry.find(Kind::Model, "abi_model") == nullptr);
  CHECK(contains(registry.problems(), "test_plugin_abi_mismatch", "SDK ABI 999"));

  const std::string file = test_plugins("abi_mismatch") + "/test_plugin_abi_mismatch.so";
  try {
    registry.load_file(file);
    FAIL("an incompatible plugin was loaded");
  } catch (const PluginError& e) {
    CHECK_THAT(e.what(), Catch::Contains("test_plugin_abi_mismatch.so") && Catch::Contains("incompatible") &&
                             Catch::Contains("rebuild"));
  }
}

TEST_CASE("two plugins providing the same kind and name are an error naming both files", "[registry]") {
  PluginRegistry registry;
  try {
    registry.discover({test_plugins("duplicate")});
    FAIL("duplicate components were accepted");
  } catch (const PluginError& e) {
    CHECK_THAT(e.what(), Catch::Contains("dup_model") && Catch::Contains("test_plugin_dup_a") &&
                             Catch::Contains("test_plugin_dup_b"));
  }
}

TEST_CASE("a shared library that is not a plugin is skipped with a reason", "[registry]") {
  PluginRegistry registry;
  registry.discover({test_plugins("not_a_plugin")});
  CHECK(contains(registry.problems(), "test_not_a_plugin", "not a chestlab plugin"));
  CHECK_THROWS_AS(registry.load_file(test_plugins("not_a_plugin") + "/test_not_a_plugin.so"), PluginError);
}

TEST_CASE("CHESTLAB_PLUGIN_PATH adds folders; a missing folder is reported", "[registry]") {
  setenv("CHESTLAB_PLUGIN_PATH", (test_plugins("good") + ":/nonexistent/chestlab").c_str(), 1);
  PluginRegistry registry;
  registry.discover();
  unsetenv("CHESTLAB_PLUGIN_PATH");
  CHECK(registry.find(Kind::Model, "tiny_test_model") != nullptr);
  CHECK(contains(registry.problems(), "/nonexistent/chestlab", "does not exist"));
}

TEST_CASE("unknown components and bad parameters are configuration errors", "[registry]") {
  PluginRegistry registry;
  registry.discover({test_plugins("good")});
  CHECK_THROWS_WITH(registry.make_model("nope", Params{}), Catch::Contains("no model plugin named 'nope'") &&
                                                                Catch::Contains("tiny_test_model"));
  CHECK_THROWS_WITH(registry.params_for(Kind::Model, "tiny_test_model", {{"chanels", std::int64_t{3}}}),
                    Catch::Contains("did you mean 'channels'"));
  CHECK_THROWS_WITH(registry.params_for(Kind::Model, "tiny_test_model", {{"channels", std::int64_t{0}}}),
                    Catch::Contains("integer in [1, 64]"));
}

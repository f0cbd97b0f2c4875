// Registers the unet model.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "chestlab/sdk.h"
#include "unet.h"

namespace {

using namespace chestlab;
using namespace chestlab::unet;

const char* const kNotebookSimple = "notebook_simple";

ComponentInfo unet_info() {
  ComponentInfo info;
  info.kind = Kind::Model;
  info.name = "unet";
  info.version = "1.0.0";
  info.description = "Configurable U-Net (optionally with concatenating residual blocks); mask logits at the input size";
  info.params = {
      param_int("depth", 4,
                "number of downsamplings (levels below full resolution); the input height and width must be "
                "multiples of 2^depth")
          .range(1, 8),
      param_int("channels", 32, "output channels of the full-resolution level").range(1, 1024),
      param_float("growth", 2.0, "width factor per level: level l has round(channels * growth^l) channels")
          .range(1.0, 4.0),
      param_string("activation", "relu", "after every convolution: relu, leaky_relu (slope 0.01) or elu")
          .one_of({"relu", "leaky_relu", "elu"}),
      param_float("dropout", 0.0, "dropout probability before the final 1x1 convolution").range(0.0, 0.95),
      param_bool("batch_norm", true, "BatchNorm after every convolution (those convolutions drop their bias)"),
      param_string("downsample", "maxpool", "maxpool: 2x2 max-pool; strided: 3x3 convolution with stride 2")
          .one_of({"maxpool", "strided"}),
      param_string("upsample", "upsample_conv",
                   "upsample_conv: nearest 2x upsampling then a 2x2 convolution (Keras style); transposed: 2x2 "
                   "transposed convolution with stride 2")
          .one_of({"upsample_conv", "transposed"}),
      param_bool("residual", false,
                 "residual blocks: each level block outputs concat(input, convolutions(input)) instead of the "
                 "convolutions alone"),
      param_int("convs_per_level", 2, "3x3 convolutions in each level block").range(1, 8),
      param_string("weight_init", "pytorch",
                   "weight initialisation: pytorch (the modules' defaults) or glorot_uniform (Keras' defaults: "
                   "Glorot-uniform kernels, zero biases)")
          .one_of({"pytorch", "glorot_uniform"}),
      param_string("preset", "",
                   "\"\" (none) or \"notebook_simple\": exactly the course notebook's Keras net (depth 2, 64 "
                   "channels, one conv per level, no BatchNorm, dropout 0.5, Glorot init); it fixes every other "
                   "parameter, which must then be left at its default")
          .one_of({"", kNotebookSimple}),
  };
  info.output = OutputKind::Mask;
  info.tags["paper"] = "Ronneberger et al. 2015, U-Net";
  return info;
}

// The parameters a preset fixes, and so may not be changed next to it.
std::vector<std::string> changed_architecture_params(const ComponentInfo& info, const Params& p) {
  std::vector<std::string> changed;
  for (const auto& spec : info.params) {
    if (spec.name == "preset" || !spec.default_value || !p.has(spec.name)) continue;
    const ParamValue& value = p.values().at(spec.name);
    if (!(value == *spec.default_value)) changed.push_back(spec.name + " = " + to_toml(value));
  }
  return changed;
}

UnetOptions options_from_params(const Params& p, std::int64_t in_channels) {
  UnetOptions o;
  o.in_channels = in_channels;
  o.depth = p.integer("depth");
  o.channels = p.integer("channels");
  o.growth = p.real("growth");
  const auto& activation = p.str("activation");
  o.activation = activation == "leaky_relu" ? Activation::LeakyRelu
                 : activation == "elu"      ? Activation::Elu
                                            : Activation::Relu;
  o.dropout = p.real("dropout");
  o.batch_norm = p.boolean("batch_norm");
  o.downsample = p.str("downsample") == "strided" ? Downsample::Strided : Downsample::MaxPool;
  o.upsample = p.str("upsample") == "transposed" ? Upsample::Transposed : Upsample::UpsampleConv;
  o.residual = p.boolean("residual");
  o.convs_per_level = p.integer("convs_per_level");
  o.init = p.str("weight_init") == "glorot_uniform" ? Init::GlorotUniform : Init::PyTorch;
  return o;
}

// A preset fixes the whole architecture: the rule that every other parameter keeps its default.
ParamCheck preset_check(const ComponentInfo& info) {
  std::vector<std::string> keys = {"preset"};
  for (const auto& spec : info.params)
    if (spec.name != "preset") keys.push_back(spec.name);
  return param_check(keys, "preset = \"notebook_simple\" leaves every other parameter at its default",
                     [info](const Params& p) {
                       if (p.str("preset") != kNotebookSimple) return std::string();
                       const auto changed = changed_architecture_params(info, p);
                       if (changed.empty()) return std::string();
                       return fmt::format("preset = \"{}\" fixes the whole architecture, but the experiment also "
                                          "sets {}; remove {} or the preset",
                                          kNotebookSimple, fmt::join(changed, ", "),
                                          changed.size() == 1 ? "it" : "them");
                     });
}

std::shared_ptr<Model> make_unet(const Params& p, const ModelContext& context) {
  if (p.str("preset") == kNotebookSimple) return std::make_shared<Unet>(notebook_simple_options(context.in_channels));
  return std::make_shared<Unet>(options_from_params(p, context.in_channels));
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  ComponentInfo info = unet_info();
  info.checks = {preset_check(info), image_size_multiple_of_depth("unet")};
  registrar.add_model(info, make_unet);
}

// Registers the resnet_seg model.
#include "chestlab/sdk.h"
#include "resnet_seg.h"

namespace {

using namespace chestlab;

ComponentInfo resnet_seg_info() {
  ComponentInfo info;
  info.kind = Kind::Model;
  info.name = "resnet_seg";
  info.version = "1.0.0";
  info.description =
      "Residual segmentation net of the RSNA pneumonia Kaggle kernel: mask logits at the input size";
  info.params = {
      param_int("channels", 32, "width of the stem convolution; every stage doubles it").range(1, 512),
      param_int("depth", 4,
                "number of downsampling stages (each halves the resolution); the input height and "
                "width must be multiples of 2^depth")
          .range(1, 8),
      param_int("blocks", 2, "residual blocks after each downsampling stage").range(0, 16),
      param_float("bn_momentum", 0.1,
                  "BatchNorm running-statistics momentum in PyTorch's convention "
                  "(running = (1 - m) * running + m * batch). Keras' momentum k corresponds to "
                  "1 - k: the kernel's Keras 0.9 is 0.1 here, Keras 0.99 would be 0.01")
          .range(0.0, 1.0),
      param_string("head", "kernel",
                   "`kernel`: BN-ReLU-1x1 conv to 1 channel, upsampled by 2^depth (the Kaggle kernel); "
                   "`transposed`: BN-ReLU-1x1 conv to 256, BN-ReLU-8x8 transposed conv (stride 4) to 128, "
                   "BN-ReLU-1x1 conv to 1, upsampled by 2^(depth-2) (a capstone report's head; depth >= 2)")
          .one_of({"kernel", "transposed"}),
  };
  info.checks = {param_check({"head", "depth"}, "head = \"transposed\" needs depth >= 2",
                             [](const Params& p) {
                               if (p.str("head") != "transposed" || p.integer("depth") >= 2) return std::string();
                               return "head = \"transposed\" upsamples 4x inside the head and needs depth >= 2 "
                                      "(depth = " +
                                      std::to_string(p.integer("depth")) + ")";
                             }),
                 image_size_multiple_of_depth("resnet_seg")};
  info.output = OutputKind::Mask;
  info.tags["source"] = "Kaggle RSNA kernel (resnet-style segmentation)";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_model(resnet_seg_info(), [](const Params& p, const ModelContext& context) {
    resnet_seg::ResnetSegOptions options;
    options.in_channels = context.in_channels;
    options.channels = p.integer("channels");
    options.depth = p.integer("depth");
    options.blocks = p.integer("blocks");
    options.bn_momentum = p.real("bn_momentum");
    options.head = p.str("head");
    return std::make_shared<resnet_seg::ResnetSeg>(options);
  });
}

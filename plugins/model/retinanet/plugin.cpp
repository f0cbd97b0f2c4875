// Registers the retinanet model.
#include <fmt/format.h>

#include "chestlab/sdk.h"
#include "retinanet.h"

namespace {

using namespace chestlab;

ComponentInfo retinanet_info() {
  ComponentInfo info;
  info.kind = Kind::Model;
  info.name = "retinanet";
  info.version = "1.0.0";
  info.description =
      "RetinaNet box detector: ResNet-18/34/50 backbone (1-channel input), FPN P3-P7, focal-loss classifier and "
      "box subnets, NMS; optional image-level opacity head that can gate the boxes";
  info.params = {
      param_int("depth", 50, "ResNet backbone depth: 18, 34 or 50").range(18, 50),
      param_int("width", 64, "channels of the backbone's stem (ResNet's 64); stages use 1x, 2x, 4x, 8x of it")
          .range(4, 256),
      param_int("fpn_channels", 256, "channels of the pyramid levels and of both subnets").range(4, 1024),
      param_int("head_convs", 4, "3x3 conv + ReLU layers in each subnet before its output conv").range(0, 8),
      param_floats("sizes", {32, 64, 128, 256, 512},
                   "base anchor side in input pixels on P3, P4, P5, P6, P7 (strides 8..128); scale them with the "
                   "input size (these suit 512 px)")
          .at_least(1.0),
      param_floats("ratios", {1.0, 1.5, 2.0},
                   "anchor aspect ratios as height / width (RSNA opacity boxes are mostly taller than wide)")
          .at_least(0.01),
      param_floats("scales", {1.0, 1.2599210498948732, 1.5874010519682994},
                   "anchor scales per level, multiplying the size (the paper's 2^0, 2^(1/3), 2^(2/3))")
          .at_least(0.01),
      param_float("prior", 0.01, "initial foreground probability of every anchor (classifier bias init)")
          .range(1e-6, 0.5),
      param_floats("box_weights", {1.0, 1.0, 1.0, 1.0}, "weights (wx, wy, ww, wh) of the box encoding")
          .at_least(1e-6),
      param_float("score_threshold", 0.05, "anchors with a lower score are dropped before NMS").range(0.0, 1.0),
      param_int("top_k", 1000, "highest-scoring anchors kept per level before NMS").range(1, 100000),
      param_float("nms_iou", 0.5, "NMS drops a box whose IoU with a better-scoring one exceeds this")
          .range(0.0, 1.0),
      param_int("max_detections", 100, "boxes kept per image after NMS").range(1, 10000),
      param_bool("image_head", false,
                 "add an image-level opacity logit (global average pool of C5, linear); trained by the loss's "
                 "image_weight term"),
      param_float("gate", 0.0,
                  "with image_head: images whose opacity probability is below this get no boxes; 0 = no gate")
          .range(0.0, 1.0),
  };
  info.checks = {
      param_check({"depth"}, "depth is 18, 34 or 50",
                  [](const Params& p) {
                    const auto depth = p.integer("depth");
                    if (depth == 18 || depth == 34 || depth == 50) return std::string();
                    return fmt::format("ResNet depth must be 18, 34 or 50, got {}", depth);
                  }),
      param_check({"sizes"}, "sizes has 5 values",
                  [](const Params& p) {
                    const auto n = p.reals("sizes").size();
                    if (n == 5) return std::string();
                    return fmt::format("needs 5 anchor sizes, one per level P3..P7, got {}", n);
                  }),
      param_check({"ratios", "scales"}, "ratios and scales are not empty",
                  [](const Params& p) {
                    if (!p.reals("ratios").empty() && !p.reals("scales").empty()) return std::string();
                    return std::string("ratios and scales must not be empty (anchors are every ratio x scale)");
                  }),
      param_check({"box_weights"}, "box_weights has 4 values",
                  [](const Params& p) {
                    const auto n = p.reals("box_weights").size();
                    if (n == 4) return std::string();
                    return fmt::format("needs 4 values (wx, wy, ww, wh), got {}", n);
                  }),
      param_check({"dataset.image_size"}, "dataset.image_size >= 32",
                  [](const Params& p) {
                    const auto size = p.integer("dataset.image_size");
                    if (size >= 32) return std::string();
                    return fmt::format("retinanet needs images of at least 32 px, got {}; nearest: 32", size);
                  }),
      param_check({"sizes", "dataset.image_size"}, "the smallest anchor (sizes[0]) fits the image",
                  [](const Params& p) {
                    const auto sizes = p.reals("sizes");
                    const auto image = static_cast<double>(p.integer("dataset.image_size"));
                    if (sizes.empty() || sizes.front() <= image) return std::string();
                    return fmt::format("the smallest anchor side {} exceeds the image size {}: no anchor fits an "
                                       "object inside the image; scale sizes with the image",
                                       sizes.front(), image);
                  }),
      param_check({"gate", "image_head"}, "gate > 0 needs image_head = true",
                  [](const Params& p) {
                    if (p.real("gate") == 0.0 || p.boolean("image_head")) return std::string();
                    return std::string("gate needs image_head = true (the gate reads the image-level score)");
                  }),
  };
  info.output = OutputKind::Boxes;
  info.tags["loss"] = "retinanet_focal";
  info.tags["source"] = "Lin et al. 2017, Focal Loss for Dense Object Detection";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_model(retinanet_info(), [](const Params& p, const ModelContext& context) {
    retinanet::RetinaNetOptions o;
    o.in_channels = context.in_channels;
    o.depth = p.integer("depth");
    o.width = p.integer("width");
    o.fpn_channels = p.integer("fpn_channels");
    o.head_convs = p.integer("head_convs");
    o.sizes = p.reals("sizes");
    o.ratios = p.reals("ratios");
    o.scales = p.reals("scales");
    o.prior = p.real("prior");
    const auto weights = p.reals("box_weights");
    for (std::size_t i = 0; i < 4; ++i) o.box_weights[i] = weights[i];
    o.score_threshold = p.real("score_threshold");
    o.top_k = p.integer("top_k");
    o.nms_iou = p.real("nms_iou");
    o.max_detections = p.integer("max_detections");
    o.image_head = p.boolean("image_head");
    o.gate = p.real("gate");
    return std::make_shared<retinanet::RetinaNet>(o);
  });
}

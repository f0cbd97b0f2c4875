// Registers the retinanet_focal box loss.
#include <fmt/format.h>

#include "chestlab/sdk.h"
#include "retinanet_focal.h"

namespace {

using namespace chestlab;

ComponentInfo retinanet_focal_info() {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = "retinanet_focal";
  info.version = "1.0.0";
  info.description =
      "RetinaNet detection loss: focal loss over matched and background anchors + smooth-L1 on the positives' box "
      "deltas, per positive anchor; + BCE of the image-level logit when the model has one";
  info.params = {
      param_float("alpha", 0.25, "focal loss weight of positive anchors (negatives get 1 - alpha); < 0 = none")
          .range(-1.0, 1.0),
      param_float("gamma", 2.0, "focal loss focusing exponent; 0 = cross-entropy").at_least(0.0),
      param_float("fg_iou", 0.5, "anchors with IoU >= this with a truth box are positive").range(0.0, 1.0),
      param_float("bg_iou", 0.4, "anchors whose best IoU is below this are background; in between: ignored")
          .range(0.0, 1.0),
      param_bool("force_best", true, "each truth box's best-overlapping anchors are positive whatever their IoU"),
      param_float("beta", 1.0 / 9.0, "smooth-L1 transition point (0 = L1)").at_least(0.0),
      param_float("box_weight", 1.0, "weight of the box regression term").at_least(0.0),
      param_float("image_weight", 1.0,
                  "weight of the image-level BCE (label: the image has a box); used when the model has an image head")
          .at_least(0.0),
  };
  info.checks = {param_check({"bg_iou", "fg_iou"}, "bg_iou <= fg_iou", [](const Params& p) {
    if (p.real("bg_iou") <= p.real("fg_iou")) return std::string();
    return fmt::format("bg_iou ({}) must not exceed fg_iou ({})", p.real("bg_iou"), p.real("fg_iou"));
  })};
  info.accepts = {OutputKind::Boxes};
  info.tags["source"] = "Lin et al. 2017, Focal Loss for Dense Object Detection";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_loss(retinanet_focal_info(), [](const Params& p) {
    retinanet_focal::RetinaFocalOptions o;
    o.alpha = p.real("alpha");
    o.gamma = p.real("gamma");
    o.fg_iou = p.real("fg_iou");
    o.bg_iou = p.real("bg_iou");
    o.force_best = p.boolean("force_best");
    o.beta = p.real("beta");
    o.box_weight = p.real("box_weight");
    o.image_weight = p.real("image_weight");
    return std::make_shared<retinanet_focal::RetinaFocalLoss>(o);
  });
}

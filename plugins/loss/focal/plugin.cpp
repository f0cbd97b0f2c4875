// Registers the focal loss (on masks; retinanet_focal is the box loss).
#include "chestlab/sdk.h"
#include "focal.h"

namespace {

using namespace chestlab;

ComponentInfo focal_info() {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = "focal";
  info.version = "1.0.0";
  info.description = "Binary focal loss on the mask logits, mean over pixels: -alpha_t (1 - p_t)^gamma log(p_t)";
  info.params = {
      param_float("alpha", 0.25, "weight of mask pixels; background pixels get 1 - alpha").range(0.0, 1.0),
      param_float("gamma", 2.0, "focusing exponent; 0 = alpha-weighted cross-entropy").at_least(0.0),
  };
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = "Lin et al. 2017, Focal Loss for Dense Object Detection (RetinaNet)";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_loss(focal_info(), [](const Params& p) {
    focal::FocalOptions options;
    options.alpha = p.real("alpha");
    options.gamma = p.real("gamma");
    return std::make_shared<focal::FocalLoss>(options);
  });
}

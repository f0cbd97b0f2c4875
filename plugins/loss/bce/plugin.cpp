// Registers the bce loss.
#include "bce.h"
#include "chestlab/mask_losses.h"
#include "chestlab/sdk.h"

namespace {

using namespace chestlab;

ComponentInfo bce_info() {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = "bce";
  info.version = "1.0.0";
  info.description = "Binary cross-entropy on the mask logits (numerically stable logits form)";
  info.params = {pos_weight_param()};
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = "Kaggle RSNA kernel (iou_bce_loss)";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_loss(bce_info(), [](const Params& p) { return std::make_shared<bce::BceLoss>(p.real("pos_weight")); });
}

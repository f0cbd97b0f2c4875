// Registers the jaccard loss.
#include "chestlab/sdk.h"
#include "jaccard.h"

namespace {

using namespace chestlab;

ComponentInfo jaccard_info() {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = "jaccard";
  info.version = "1.0.0";
  info.description = "Soft Jaccard (IoU) loss on sigmoid probabilities: 1 - (I + s) / (U + s)";
  info.params = soft_jaccard_params();
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = "Kaggle RSNA kernel (iou_bce_loss)";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_loss(jaccard_info(), [](const Params& p) {
    return std::make_shared<jaccard::JaccardLoss>(soft_jaccard_options(p));
  });
}

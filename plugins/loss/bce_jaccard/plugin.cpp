// Registers the bce_jaccard loss.
#include "bce_jaccard.h"
#include "chestlab/sdk.h"

namespace {

using namespace chestlab;

ComponentInfo bce_jaccard_info() {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = "bce_jaccard";
  info.version = "1.0.0";
  info.description = "bce_weight * BCE + jaccard_weight * soft Jaccard (the kernel's iou_bce_loss)";
  info.params = {param_float("bce_weight", 0.5, "weight of the cross-entropy term").at_least(0.0),
                 param_float("jaccard_weight", 0.5, "weight of the Jaccard term").at_least(0.0), pos_weight_param()};
  for (const ParamSpec& spec : soft_jaccard_params()) info.params.push_back(spec);
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = "Kaggle RSNA kernel (iou_bce_loss)";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_loss(bce_jaccard_info(), [](const Params& p) {
    bce_jaccard::BceJaccardOptions options;
    options.bce_weight = p.real("bce_weight");
    options.jaccard_weight = p.real("jaccard_weight");
    options.pos_weight = p.real("pos_weight");
    options.jaccard = soft_jaccard_options(p);
    return std::make_shared<bce_jaccard::BceJaccardLoss>(options);
  });
}

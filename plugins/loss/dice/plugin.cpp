// Registers the mask losses dice and focal.
#include "chestlab/sdk.h"
#include "overlap_losses.h"

namespace {

using namespace chestlab;
using namespace chestlab::overlap_loss;

ComponentInfo loss_info(std::string name, std::string description, Schema params, std::string source) {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.description = std::move(description);
  info.params = std::move(params);
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = std::move(source);
  return info;
}

void add_dice(Registrar& registrar) {
  registrar.add_loss(
      loss_info("dice", "Soft Dice loss on sigmoid probabilities: 1 - (2 I + s) / (|P| + |T| + s)",
                {param_float("smooth", 1.0,
                             "added to numerator and denominator, so that an empty prediction on an "
                             "empty mask costs 0 and the gradient stays finite")
                     .above(0.0),
                 param_bool("per_image", false,
                            "false: one Dice over all pixels of the batch; true: the mean of per-image losses")},
                "Milletari et al. 2016 (V-Net), soft Dice"),
      [](const Params& p) {
        DiceOptions options;
        options.smooth = p.real("smooth");
        options.per_image = p.boolean("per_image");
        return std::make_shared<DiceLoss>(options);
      });
}

void add_focal(Registrar& registrar) {
  registrar.add_loss(
      loss_info("focal",
                "Binary focal loss on the mask logits, mean over pixels: -alpha_t (1 - p_t)^gamma log(p_t)",
                {param_float("alpha", 0.25, "weight of mask pixels; background pixels get 1 - alpha").range(0.0, 1.0),
                 param_float("gamma", 2.0, "focusing exponent; 0 = alpha-weighted cross-entropy").at_least(0.0)},
                "Lin et al. 2017, Focal Loss for Dense Object Detection (RetinaNet)"),
      [](const Params& p) {
        FocalOptions options;
        options.alpha = p.real("alpha");
        options.gamma = p.real("gamma");
        return std::make_shared<FocalLoss>(options);
      });
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  add_dice(registrar);
  add_focal(registrar);
}

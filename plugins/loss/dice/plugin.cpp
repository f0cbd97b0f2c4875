// Registers the dice loss.
#include "chestlab/sdk.h"
#include "dice.h"

namespace {

using namespace chestlab;

ComponentInfo dice_info() {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = "dice";
  info.version = "1.0.0";
  info.description = "Soft Dice loss on sigmoid probabilities: 1 - (2 I + s) / (|P| + |T| + s)";
  info.params = {
      param_float("smooth", 1.0,
                  "added to numerator and denominator, so that an empty prediction on an empty mask costs 0 and "
                  "the gradient stays finite")
          .above(0.0),
      param_bool("per_image", false, "false: one Dice over all pixels of the batch; true: the mean of per-image losses"),
  };
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = "Milletari et al. 2016 (V-Net), soft Dice";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_loss(dice_info(), [](const Params& p) {
    dice::DiceOptions options;
    options.smooth = p.real("smooth");
    options.per_image = p.boolean("per_image");
    return std::make_shared<dice::DiceLoss>(options);
  });
}

// Registers the dice metric (the dice loss of plugins/loss/dice is another kind, so the names
// do not clash: the registry keys components by kind and name).
#include "chestlab/sdk.h"
#include "dice.h"

namespace {

using namespace chestlab;

ComponentInfo dice_info() {
  ComponentInfo info;
  info.kind = Kind::Metric;
  info.name = "dice";
  info.version = "1.0.0";
  info.description =
      "Per-image Dice coefficient 2|P.T| / (|P| + |T|) of the thresholded mask with the ground truth, averaged "
      "over images (per image Dice = 2 IoU / (1 + IoU)). An all-background prediction scores empty_score x "
      "(fraction of images whose ground truth is empty): 0 on every image with foreground, empty_score on the rest";
  info.params = {
      param_float("threshold", 0.5, "a pixel is predicted foreground when its probability is >= threshold")
          .range(0.0, 1.0),
      param_float("empty_score", 1.0,
                  "Dice of an image where prediction and ground truth are both empty; 1 counts it as a perfect "
                  "answer, 0 ignores correct negatives")
          .range(0.0, 1.0),
  };
  info.accepts = {OutputKind::Mask};
  info.higher_is_better = true;
  // The mean over images of each image's own score: the host can score images one by one
  // (per-image values in the run file, compare --per-image, the report).
  info.tags["per_image"] = "mean";
  info.tags["source"] = "Dice 1945, Sorensen 1948; the per-image mean, as in mean_iou";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_metric(dice_info(), [](const Params& p) {
    return std::make_shared<dice_metric::Dice>(p.real("threshold"), p.real("empty_score"));
  });
}

// Registers the pixel_accuracy metric.
#include "chestlab/sdk.h"
#include "pixel_accuracy.h"

namespace {

using namespace chestlab;

ComponentInfo pixel_accuracy_info() {
  ComponentInfo info;
  info.kind = Kind::Metric;
  info.name = "pixel_accuracy";
  info.version = "1.0.0";
  info.description =
      "Fraction of pixels whose thresholded prediction equals the ground truth (an all-background prediction "
      "scores the fraction of background pixels)";
  info.params = {
      param_float("threshold", 0.5, "a pixel is predicted foreground when its probability is >= threshold")
          .range(0.0, 1.0),
  };
  info.accepts = {OutputKind::Mask};
  info.higher_is_better = true;
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_metric(pixel_accuracy_info(), [](const Params& p) {
    return std::make_shared<pixel_accuracy::PixelAccuracy>(p.real("threshold"));
  });
}

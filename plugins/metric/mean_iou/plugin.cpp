// Registers the mask metrics pixel_accuracy and mean_iou.
#include "chestlab/sdk.h"
#include "segmentation_metrics.h"

namespace {

using namespace chestlab;

ComponentInfo metric_info(std::string name, std::string description, Schema params) {
  ComponentInfo info;
  info.kind = Kind::Metric;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.description = std::move(description);
  info.params = std::move(params);
  info.accepts = {OutputKind::Mask};
  info.higher_is_better = true;
  return info;
}

ParamSpec threshold_param() {
  return param_float("threshold", 0.5, "a pixel is predicted foreground when its probability is >= threshold")
      .range(0.0, 1.0);
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_metric(
      metric_info("pixel_accuracy",
                  "Fraction of pixels whose thresholded prediction equals the ground truth "
                  "(an all-background prediction scores the fraction of background pixels)",
                  {threshold_param()}),
      [](const Params& p) { return std::make_shared<seg_metric::PixelAccuracy>(p.real("threshold")); });
  registrar.add_metric(
      metric_info("mean_iou",
                  "Per-image IoU of the thresholded mask with the ground truth, averaged over images. "
                  "An all-background prediction scores empty_score x (fraction of images whose "
                  "ground truth is empty): 0 on every image with foreground, empty_score on the rest",
                  {threshold_param(),
                   param_float("empty_score", 1.0,
                               "IoU of an image where prediction and ground truth are both empty; "
                               "1 counts it as a perfect answer, 0 ignores correct negatives")
                       .range(0.0, 1.0)}),
      [](const Params& p) {
        return std::make_shared<seg_metric::MeanIou>(p.real("threshold"), p.real("empty_score"));
      });
}

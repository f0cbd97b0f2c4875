// Registers the mean_iou metric.
#include "chestlab/sdk.h"
#include "mean_iou.h"

namespace {

using namespace chestlab;

ComponentInfo mean_iou_info() {
  ComponentInfo info;
  info.kind = Kind::Metric;
  info.name = "mean_iou";
  info.version = "1.0.0";
  info.description =
      "Per-image IoU of the thresholded mask with the ground truth, averaged over images. An all-background "
      "prediction scores empty_score x (fraction of images whose ground truth is empty): 0 on every image with "
      "foreground, empty_score on the rest";
  info.params = {
      param_float("threshold", 0.5, "a pixel is predicted foreground when its probability is >= threshold")
          .range(0.0, 1.0),
      param_float("empty_score", 1.0,
                  "IoU of an image where prediction and ground truth are both empty; 1 counts it as a perfect "
                  "answer, 0 ignores correct negatives")
          .range(0.0, 1.0),
  };
  info.accepts = {OutputKind::Mask};
  // The mean over images of each image's own score: the host can score images one by one
  // (per-image values in the run file, compare --per-image, the report).
  info.tags["per_image"] = "mean";
  info.higher_is_better = true;
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_metric(mean_iou_info(), [](const Params& p) {
    return std::make_shared<mean_iou::MeanIou>(p.real("threshold"), p.real("empty_score"));
  });
}

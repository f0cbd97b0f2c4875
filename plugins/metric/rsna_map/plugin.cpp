// Registers the rsna_map metric.
#include "chestlab/sdk.h"
#include "rsna_map.h"

namespace {

using namespace chestlab;

ComponentInfo rsna_map_info() {
  ComponentInfo info;
  info.kind = Kind::Metric;
  info.name = "rsna_map";
  info.version = "1.0.0";
  info.description =
      "RSNA Pneumonia Detection Challenge score: mean over images of the mean over IoU thresholds "
      "0.40..0.75 of TP/(TP+FP+FN); a mask model's map becomes boxes by connected components";
  info.params = {
      param_float("threshold", 0.5, "mask models: a pixel is foreground when its probability is > threshold")
          .range(0.0, 1.0),
      param_string("confidence", "mean",
                   "mask models: a box's confidence is the mean probability over its rectangle (the Kaggle "
                   "kernel) or the highest probability of its component")
          .one_of({"mean", "max"}),
      param_float("min_area", 0.0, "mask models: components with fewer pixels (of the model's mask) are dropped")
          .at_least(0.0),
      param_float("gate", 0.0,
                  "mask models: images whose image_prob is below this get no boxes; 0 = no gate (needs a model "
                  "with an image-level output otherwise)")
          .range(0.0, 1.0),
      param_float("min_score", 0.0, "predicted boxes with a lower confidence are dropped (mask and box models)")
          .range(0.0, 1.0),
  };
  // Works with mask models (boxes from the mask) and box models (their boxes).
  info.accepts = {OutputKind::Mask, OutputKind::Boxes};
  info.higher_is_better = true;
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_metric(rsna_map_info(), [](const Params& p) {
    rsna_map::RsnaMapOptions o;
    o.from_mask.threshold = p.real("threshold");
    o.from_mask.confidence = p.str("confidence") == "max" ? BoxConfidence::Max : BoxConfidence::Mean;
    o.from_mask.min_area = p.real("min_area");
    if (p.real("gate") > 0.0) o.from_mask.gate_threshold = p.real("gate");
    o.min_score = p.real("min_score");
    return std::make_shared<rsna_map::RsnaMap>(o);
  });
}

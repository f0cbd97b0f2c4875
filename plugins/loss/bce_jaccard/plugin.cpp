// Registers the mask losses bce, jaccard and bce_jaccard.
#include "chestlab/sdk.h"
#include "segmentation_losses.h"

namespace {

using namespace chestlab;
using namespace chestlab::seg_loss;

ComponentInfo loss_info(std::string name, std::string description, Schema params) {
  ComponentInfo info;
  info.kind = Kind::Loss;
  info.name = std::move(name);
  info.version = "1.0.0";
  info.description = std::move(description);
  info.params = std::move(params);
  info.accepts = {OutputKind::Mask};
  info.tags["source"] = "Kaggle RSNA kernel (iou_bce_loss)";
  return info;
}

ParamSpec pos_weight_param() {
  return param_float("pos_weight", 1.0,
                     "weight of the positive (mask) pixels in the cross-entropy; 1 = unweighted")
      .above(0.0);
}

ParamSpec smooth_param() {
  return param_float("smooth", 1.0,
                     "added to intersection and union, so that an empty prediction on an empty "
                     "mask costs 0 and the gradient stays finite")
      .above(0.0);
}

ParamSpec per_image_param() {
  return param_bool("per_image", false,
                    "false: one IoU over all pixels of the batch (the kernel's way); true: the "
                    "mean of per-image losses");
}

JaccardOptions jaccard_options(const Params& p) {
  JaccardOptions options;
  options.smooth = p.real("smooth");
  options.per_image = p.boolean("per_image");
  return options;
}

void add_bce(Registrar& registrar) {
  registrar.add_loss(
      loss_info("bce", "Binary cross-entropy on the mask logits (numerically stable logits form)",
                {pos_weight_param()}),
      [](const Params& p) { return std::make_shared<BceLoss>(p.real("pos_weight")); });
}

void add_jaccard(Registrar& registrar) {
  registrar.add_loss(
      loss_info("jaccard", "Soft Jaccard (IoU) loss on sigmoid probabilities: 1 - (I + s) / (U + s)",
                {smooth_param(), per_image_param()}),
      [](const Params& p) { return std::make_shared<JaccardLoss>(jaccard_options(p)); });
}

void add_bce_jaccard(Registrar& registrar) {
  registrar.add_loss(
      loss_info("bce_jaccard", "bce_weight * BCE + jaccard_weight * soft Jaccard (the kernel's iou_bce_loss)",
                {param_float("bce_weight", 0.5, "weight of the cross-entropy term").at_least(0.0),
                 param_float("jaccard_weight", 0.5, "weight of the Jaccard term").at_least(0.0),
                 pos_weight_param(), smooth_param(), per_image_param()}),
      [](const Params& p) {
        BceJaccardOptions options;
        options.bce_weight = p.real("bce_weight");
        options.jaccard_weight = p.real("jaccard_weight");
        options.pos_weight = p.real("pos_weight");
        options.jaccard = jaccard_options(p);
        return std::make_shared<BceJaccardLoss>(options);
      });
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  add_bce(registrar);
  add_jaccard(registrar);
  add_bce_jaccard(registrar);
}

#include "focal.h"

#include "chestlab/detection/ops.h"

namespace chestlab::focal {

// The detection package's element-wise focal loss, the one RetinaNet's box loss uses too.
torch::Tensor focal_value(const MaskPair& pair, const FocalOptions& options) {
  return detection::sigmoid_focal_loss(pair.logits, pair.targets, options.alpha, options.gamma).mean();
}

torch::Tensor FocalLoss::compute(const ModelOutput& output, const Batch& batch) {
  return focal_value(mask_pair("focal", output, batch), options_);
}

}  // namespace chestlab::focal

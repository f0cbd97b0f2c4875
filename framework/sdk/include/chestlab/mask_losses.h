// Mask-loss formulas that several loss plugins share (bce and bce_jaccard read the
// cross-entropy, jaccard and bce_jaccard the soft Jaccard), with the parameters that set
// them, declared once. Each takes the checked logits and targets of mask_pair.h.
#pragma once

#include <torch/types.h>

#include "chestlab/mask_pair.h"
#include "chestlab/params.h"

namespace chestlab {

// Mean binary cross-entropy with logits; positive pixels weighted by pos_weight. The logits
// form (log-sum-exp inside) stays finite where sigmoid saturates to 0 or 1.
torch::Tensor bce_with_logits(const MaskPair& pair, double pos_weight);
// The `pos_weight` parameter of bce_with_logits.
ParamSpec pos_weight_param();

struct SoftJaccardOptions {
  double smooth = 1.0;     // > 0: an empty prediction on an empty mask costs 0
  bool per_image = false;  // false: one IoU over the whole batch (the RSNA kernel's choice)
};

// 1 - (|A.B| + smooth) / (|A| + |B| - |A.B| + smooth) on sigmoid probabilities, over the
// whole batch or per image and then averaged.
torch::Tensor soft_jaccard_loss(const MaskPair& pair, const SoftJaccardOptions& options);
// The `smooth` and `per_image` parameters of soft_jaccard_loss, and reading them back.
Schema soft_jaccard_params();
SoftJaccardOptions soft_jaccard_options(const Params& params);

}  // namespace chestlab

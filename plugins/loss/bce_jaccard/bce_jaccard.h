// Mask losses of the RSNA Kaggle kernel: binary cross-entropy, soft Jaccard (IoU) and their
// weighted sum. All read ModelOutput::mask_logits and Batch::masks ([B, 1, H, W], 0/1).
#pragma once

#include <torch/torch.h>

#include "chestlab/dataset.h"
#include "chestlab/loss.h"
#include "chestlab/mask_pair.h"
#include "chestlab/model.h"

namespace chestlab::seg_loss {

struct JaccardOptions {
  double smooth = 1.0;
  bool per_image = false;  // false: one IoU over the whole batch, as the kernel computed it
};

// Mean binary cross-entropy with logits; positive pixels weighted by pos_weight.
torch::Tensor bce_value(const MaskPair& pair, double pos_weight);
// 1 - (|A.B| + smooth) / (|A| + |B| - |A.B| + smooth) on sigmoid probabilities.
torch::Tensor jaccard_value(const MaskPair& pair, const JaccardOptions& options);

class BceLoss : public Loss {
 public:
  explicit BceLoss(double pos_weight) : pos_weight_(pos_weight) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  double pos_weight_;
};

class JaccardLoss : public Loss {
 public:
  explicit JaccardLoss(JaccardOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  JaccardOptions options_;
};

struct BceJaccardOptions {
  double bce_weight = 0.5;
  double jaccard_weight = 0.5;
  double pos_weight = 1.0;
  JaccardOptions jaccard;
};

class BceJaccardLoss : public Loss {
 public:
  explicit BceJaccardLoss(BceJaccardOptions options) : options_(options) {}
  torch::Tensor compute(const ModelOutput& output, const Batch& batch) override;

 private:
  BceJaccardOptions options_;
};

}  // namespace chestlab::seg_loss

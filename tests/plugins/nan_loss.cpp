// A loss that turns NaN whenever a batch holds sample "synth-0": with 2 folds, exactly the
// fold that trains on that sample must fail and the other must complete. With
// $CHESTLAB_TEST_NAN_LOSS_OFF set it is plain BCE: a failure that goes away, as a transient
// one would, so that `sweep --retry-failed` can be seen to finish a failed run.
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>

#include "chestlab/sdk.h"

namespace {

struct NanWhenSynth0 : chestlab::Loss {
  torch::Tensor compute(const chestlab::ModelOutput& out, const chestlab::Batch& batch) override {
    auto loss = torch::binary_cross_entropy_with_logits(out.mask_logits, batch.masks);
    const bool poisoned = std::find(batch.ids.begin(), batch.ids.end(), "synth-0") != batch.ids.end() &&
                          !std::getenv("CHESTLAB_TEST_NAN_LOSS_OFF");
    return poisoned ? loss * std::numeric_limits<float>::quiet_NaN() : loss;
  }
};

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  chestlab::ComponentInfo info;
  info.name = "nan_when_synth0";
  info.version = "0.0.1";
  info.description = "test loss: BCE, but NaN for any batch containing sample synth-0";
  info.accepts = {chestlab::OutputKind::Mask};
  registrar.add_loss(info, [](const chestlab::Params&) { return std::make_shared<NanWhenSynth0>(); });
}

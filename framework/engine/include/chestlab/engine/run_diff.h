// Where two runs of one configuration part ways: what `chestlab rerun` checks to say whether
// a run reproduces (bit for bit on CPU with train.deterministic = true). Torch-free.
#pragma once

#include <optional>
#include <string>

#include "chestlab/engine/runfile.h"

namespace chestlab {

struct RunDifference {
  std::string field;     // e.g. "fold 0 epoch 1 val_loss", "fold 2 weights stem.weight[17]"
  std::string original;  // the value in the first run, as text ("absent" when missing)
  std::string rerun;     // the value in the second run
  std::string describe() const;  // "<field>: <original> (original) vs <rerun> (rerun)"
};

// The first difference, in this order: config hash; the set of folds; then fold by fold
// (by index): status, error, metric names, number of epochs, each epoch's epoch, lr,
// train_loss, val_loss and metrics, best epoch, best value, the train/validation ids, the
// best weights (names, shapes, values); then the holdout test values. Numbers must be
// equal exactly (NaN equals NaN); wall-clock fields (seconds, dates) and the environment
// are not compared. nullopt when the runs match. Weights are compared only when both
// runs were read with LoadWeights::Yes.
std::optional<RunDifference> first_difference(const RunInfo& original, const RunInfo& rerun);

}  // namespace chestlab

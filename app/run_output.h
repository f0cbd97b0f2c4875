// What `chestlab run` (and rerun, and a sweep's units) show on the terminal while a run
// trains and when it ends. The host reports (chestlab/host/run_driver.h); this prints.
#pragma once

#include "chestlab/host/run_driver.h"

namespace chestlab::app {

// run_experiment(request) with its progress, epochs and results on stdout unless `verbose` is
// false; plugin warnings and failed folds on stderr always. At the end (verbose, the process
// that wrote the run file): the run's compare table, what an empty prediction scores, and how
// to continue an interrupted run.
RunOutcome run_experiment_on_terminal(const RunRequest& request, bool verbose);

}  // namespace chestlab::app

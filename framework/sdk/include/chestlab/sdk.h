// The one header a plugin includes.
#pragma once

#include "chestlab/component.h"
#include "chestlab/dataset.h"
#include "chestlab/errors.h"
#include "chestlab/loss.h"
#include "chestlab/metric.h"
#include "chestlab/model.h"
#include "chestlab/param_check.h"
#include "chestlab/params.h"
#include "chestlab/plugin.h"
#include "chestlab/scheduler.h"

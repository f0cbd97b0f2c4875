// Checking plain parameter values against a schema. The experiment-file validator adds
// source positions around the same checks; programmatic callers (tests, the registry's
// params_for) use check_params directly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "chestlab/params.h"

namespace chestlab {

// Empty when `value` fits `spec`; otherwise what is wrong, e.g.
// "expected integer in [1, 64], got -3". An Int is accepted for a Float (and Int lists
// for Float lists) and converted by coerce_value.
std::string check_value(const ParamSpec& spec, const ParamValue& value);
ParamValue coerce_value(const ParamSpec& spec, const ParamValue& value);

// All of `given` checked against `schema`, defaults filled in, then against `checks` (a
// component's ComponentInfo::checks) once every value is valid. Throws ConfigError listing
// every problem, each prefixed by `context` (e.g. "model 'unet'") and the parameter's name.
Params check_params(const Schema& schema, const std::map<std::string, ParamValue>& given,
                    const std::string& context, const std::vector<ParamCheck>& checks = {});

// The rule of every encoder-decoder that halves the resolution `depth` times and doubles it
// back: the dataset's image_size is a multiple of 2^depth. Keys {"dataset.image_size",
// depth_key}; the message names the nearest allowed size, e.g. "63 is not a multiple of 4
// for resnet_seg depth 2; nearest: 64 (or lower model.depth)".
ParamCheck image_size_multiple_of_depth(const std::string& model, const std::string& depth_key = "depth");

// Closest name by edit distance, or "" when nothing is close enough to suggest.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace chestlab

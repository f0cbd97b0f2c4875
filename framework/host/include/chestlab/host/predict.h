// Prediction with a recorded run: the experiment rebuilt from the configuration stored in
// the run file, each chosen fold's best weights loaded, and every image of a folder run
// through the run's own dataset plugin (its folder reader: same decoding, windowing and
// resizing as training; no augmentation, no preprocessing cache). Boxes come from the run's
// first metric that makes boxes (Metric::makes_boxes), with that metric's parameters, so
// predictions are post-processed exactly as validation scored them. Nothing here knows a
// dataset or a metric by name; `chestlab predict` writes the result as an RSNA submission.
#pragma once

#include <opencv2/core.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "chestlab/box.h"
#include "chestlab/engine/config.h"
#include "chestlab/params.h"

namespace chestlab {

class PluginRegistry;

// One image's boxes from several models (one list per model, in original pixels) -> one list.
using BoxFusion = std::function<std::vector<ScoredBox>(const std::vector<std::vector<ScoredBox>>& views)>;

struct PredictRequest {
  std::string run_file;
  std::vector<int> folds;        // empty: every fold that has best weights ("--fold all")
  std::string images_dir;        // a folder the run's dataset reads (e.g. of <patientId>.dcm)
  std::string device;            // "" = the run's train.device
  std::size_t batch_size = 0;    // 0 = the run's train.batch_size
  // Parameters of the box-making metric to override (e.g. {"threshold", 0.3}), checked
  // against its schema.
  std::map<std::string, ParamValue> post_processing;
  // Box models with several folds: how the folds' post-processed boxes of one image (one list
  // per fold, in original pixels) become one list. Empty: concatenated. The host knows no
  // fusion method; its callers pass one (chestlab predict: detection::fuse_views, weighted
  // boxes fusion by default). Not called with a single fold, whose boxes are kept as they are.
  BoxFusion fuse_boxes;
};

// One image's result. Boxes are in pixels of the original image (e.g. 1024 x 1024).
struct ImagePrediction {
  std::string id;                 // the dataset's sample id (e.g. the patientId)
  int original_rows = 0;
  int original_cols = 0;
  std::vector<ScoredBox> boxes;   // after post-processing; highest confidence first
  cv::Mat image;                  // CV_32FC1 model input in [0, 1] (S x S)
  cv::Mat probability;            // CV_32FC1 S x S fold-averaged mask probability; empty for box models
};

// How predictions become boxes: the metric and the parameter values it is made with.
struct PostProcessing {
  std::string metric;             // metric plugin
  std::string name;               // its name in the run (the [[metrics]] entry)
  Params params;                  // with the request's overrides applied
  std::vector<std::string> overridden;  // parameter names the request changed
  // "threshold 0.5, confidence mean, ... (metric rsna_map)"
  std::string describe() const;
};

struct PredictSummary {
  std::vector<int> folds;          // the folds whose models were used
  std::size_t images = 0;
  std::string model;               // model plugin
  std::string output_kind;         // "mask" or "boxes"
  std::int64_t input_size = 0;     // model input height (= width)
  PostProcessing post;
  std::vector<std::string> notes;  // e.g. folds left out for lack of weights
  double seconds = 0;
};

// Called once with every sample id of the folder, in order, before any model runs (a caller
// can check them against a labels table), then once per image in that order.
struct PredictCallbacks {
  std::function<void(const std::vector<std::string>& ids)> before;
  std::function<void(const ImagePrediction&)> each;
};

// Runs the prediction. Several folds: mask models average the folds' probability maps (and
// image-level probabilities) before post-processing; box models post-process each fold's
// boxes and pass them to request.fuse_boxes (concatenated when it is empty). Throws
// ConfigError for a fold that does not exist or has no weights, a run whose dataset has no
// folder reader, or a run without a metric that makes boxes; DataError for an unreadable run
// file, folder or image.
PredictSummary predict_run(const PredictRequest& request, const PluginRegistry& registry,
                           const PredictCallbacks& callbacks);

}  // namespace chestlab

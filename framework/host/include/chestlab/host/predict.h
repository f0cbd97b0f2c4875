// Prediction with a recorded run: the experiment rebuilt from the configuration stored in
// the run file, each chosen fold's best weights loaded, and every <patientId>.dcm of a
// folder run through the run's own dataset plugin (same decoding, windowing and resizing as
// training; no augmentation, no preprocessing cache). `chestlab predict` writes the results
// as an RSNA submission; docs/rsna.md describes it.
#pragma once

#include <opencv2/core.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chestlab/detection/boxes_from_mask.h"
#include "chestlab/engine/config.h"

namespace chestlab {

struct PredictRequest {
  std::string run_file;
  std::vector<int> folds;        // empty: every fold that has best weights ("--fold all")
  std::string images_dir;        // folder of <patientId>.dcm
  std::string device;            // "" = the run's train.device
  std::size_t batch_size = 0;    // 0 = the run's train.batch_size
  std::optional<double> threshold;  // overrides the post-processing's mask threshold
  std::vector<std::string> plugin_dirs;
};

// One image's result. Boxes are in pixels of the original image (e.g. 1024 x 1024).
struct ImagePrediction {
  std::string id;                 // patientId (the file name without .dcm)
  int original_rows = 0;
  int original_cols = 0;
  std::vector<ScoredBox> boxes;   // after post-processing; highest confidence first
  cv::Mat image;                  // CV_32FC1 model input in [0, 1] (S x S)
  cv::Mat probability;            // CV_32FC1 S x S fold-averaged mask probability; empty for box models
};

// How a mask becomes boxes: the run's first `rsna_map` metric's settings (threshold,
// confidence, min_area, gate, min_score), so predictions match what validation scored;
// BoxesFromMaskOptions' defaults when the run has no such metric.
struct PostProcessing {
  BoxesFromMaskOptions from_mask;  // scale is set per image
  double min_score = 0.0;
  std::string source;              // "metric rsna_map" or "defaults"
  std::string describe() const;
};
PostProcessing post_processing_of(const ExperimentConfig& config);

struct PredictSummary {
  std::vector<int> folds;          // the folds whose models were used
  std::size_t images = 0;
  std::string model;               // model plugin
  std::string output_kind;         // "mask" or "boxes"
  std::int64_t input_size = 0;     // model input height (= width)
  PostProcessing post;
  double seconds = 0;
};

// The patient ids of the `<id>.dcm` files of `dir` (not recursive), sorted. Throws
// DataError when the folder is missing or holds no .dcm file.
std::vector<std::string> dicom_patient_ids(const std::string& dir);

// Runs the prediction; `each` receives the images in dicom_patient_ids() order.
// Several folds: mask models average the folds' probability maps (and image-level
// probabilities) before post-processing; box models concatenate the folds' boxes (no
// suppression or fusion). Throws ConfigError for a fold that does not exist or has no
// weights, a run whose dataset does not read a folder of DICOM files (needs `images` and
// `labels` parameters, as rsna_pneumonia has), or a gate without an image-level output;
// DataError for an unreadable run file or image.
PredictSummary predict_run(const PredictRequest& request, const std::function<void(const ImagePrediction&)>& each);

}  // namespace chestlab

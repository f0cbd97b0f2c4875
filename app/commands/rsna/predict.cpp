// chestlab predict --run RUN.h5 [--fold K | --fold all] --images DIR [--labels CSV] --out submission.csv
//                  [--overlays DIR] [--fuse wbf|nms|concat] [--fuse-iou T]
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <optional>
#include <iostream>
#include <unordered_set>

#include "chestlab/detection/fusion.h"
#include "chestlab/errors.h"
#include "chestlab/host/predict.h"
#include "chestlab/imaging/image_ops.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/rsna/metric.h"
#include "chestlab/rsna/submission.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab predict --run RUN.h5 [--fold K | --fold all] --images DIR --out submission.csv\n"
    "                        [--labels LABELS.csv] [--overlays DIR] [--threshold T] [--device D]\n"
    "                        [--batch-size N] [--fuse wbf|nms|concat] [--fuse-iou T]\n\n"
    "Runs a recorded run's models on every <patientId>.dcm of DIR, with the run's own dataset\n"
    "preprocessing (no augmentation, no cache), and writes an RSNA submission\n"
    "(patientId,PredictionString: groups of `confidence x y width height` in pixels of the\n"
    "original images; empty for no box). A mask model's probability map becomes boxes as the\n"
    "run's rsna_map metric made them (threshold, confidence, min_area, gate, min_score).\n"
    "--fold all (the default) uses every fold with weights: mask models average the folds'\n"
    "probability maps before post-processing; box models fuse the folds' boxes: --fuse wbf\n"
    "(the default; weighted boxes fusion: boxes of the folds that overlap with IoU >= --fuse-iou,\n"
    "default 0.55, become one box at their confidence-weighted mean position, its confidence the\n"
    "mean times the share of folds that saw it), nms (the best of each overlapping group, IoU >\n"
    "--fuse-iou) or concat (every fold's boxes, copies included).\n"
    "With --labels, also prints the competition score of the images predicted. --overlays\n"
    "writes one PNG per image with the truth (green, with --labels) and predicted (red) boxes.\n\n";

constexpr int kOverlayMaxSize = 512;

std::vector<int> parse_folds(const std::string& text) {
  if (text == "all") return {};
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    throw po::error("--fold takes a fold number or `all` (got '" + text + "')");
  return {std::stoi(text)};
}

// The prepared image at up to 512 px with truth (green) and predictions (red, confidence
// above the box), boxes given in original pixels.
cv::Mat overlay(const ImagePrediction& p, const std::vector<Box>* truth) {
  const int size = std::min(kOverlayMaxSize, std::max(p.original_rows, p.original_cols));
  const int rows = std::max(1, static_cast<int>(std::lround(size * double(p.original_rows) / std::max(p.original_rows, p.original_cols))));
  const int cols = std::max(1, static_cast<int>(std::lround(size * double(p.original_cols) / std::max(p.original_rows, p.original_cols))));
  cv::Mat grey = unit_to_u8(resize_image(p.image, rows, cols)), canvas;
  cv::cvtColor(grey, canvas, cv::COLOR_GRAY2BGR);
  const double sx = double(cols) / p.original_cols, sy = double(rows) / p.original_rows;
  auto rect = [&](const Box& b) {
    return cv::Rect(cv::Point(int(std::lround(b.x * sx)), int(std::lround(b.y * sy))),
                    cv::Point(int(std::lround(b.right() * sx)), int(std::lround(b.bottom() * sy))));
  };
  if (truth)
    for (const Box& b : *truth) cv::rectangle(canvas, rect(b), cv::Scalar(0, 200, 0), 2);
  for (const ScoredBox& b : p.boxes) {
    const cv::Rect r = rect(b.box);
    cv::rectangle(canvas, r, cv::Scalar(0, 0, 255), 2);
    cv::putText(canvas, fmt::format("{:.2f}", b.score), cv::Point(r.x + 2, std::max(12, r.y - 4)),
                cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 255), 1, cv::LINE_AA);
  }
  return canvas;
}

struct ChosenFusion {
  detection::FuseMethod method = detection::FuseMethod::Wbf;
  detection::FusionOptions options;
  std::string describe() const {
    return method == detection::FuseMethod::Concat
               ? "concat"
               : fmt::format("{} (IoU {})", detection::to_string(method), options.iou_threshold);
  }
};

ChosenFusion fusion_from(const po::variables_map& vm) {
  ChosenFusion chosen;
  const std::string name = vm["fuse"].as<std::string>();
  const auto method = detection::parse_fuse_method(name);
  if (!method) throw po::error("--fuse takes wbf, nms or concat (got '" + name + "')");
  chosen.method = *method;
  chosen.options.iou_threshold = vm["fuse-iou"].as<double>();
  if (!(chosen.options.iou_threshold > 0.0 && chosen.options.iou_threshold <= 1.0))
    throw po::error("--fuse-iou must be in (0, 1]");
  return chosen;
}

int run_predict(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "run", po::value<std::string>(), "run file (required)")(
      "fold", po::value<std::string>()->default_value("all"), "a fold number, or all")(
      "images", po::value<std::string>(), "folder of <patientId>.dcm (required)")(
      "out", po::value<std::string>(), "submission CSV to write (required)")(
      "labels", po::value<std::string>(), "stage_2_train_labels.csv: print the score")(
      "overlays", po::value<std::string>(), "folder for one PNG per image with boxes drawn")(
      "threshold", po::value<double>(), "mask models: foreground above this probability (default: the run's)")(
      "device", po::value<std::string>()->default_value(""), "auto | cpu | cuda[:N]; default: the run's")(
      "batch-size", po::value<std::size_t>()->default_value(0), "images per forward pass; 0: the run's")(
      "fuse", po::value<std::string>()->default_value("wbf"), "box models, several folds: wbf | nms | concat")(
      "fuse-iou",
      po::value<double>()->default_value(detection::FusionOptions{}.iou_threshold,
                                         fmt::format("{}", detection::FusionOptions{}.iou_threshold)),
      "IoU at which wbf joins boxes and nms suppresses them, in (0, 1]")(
      "plugin-path", po::value<std::vector<std::string>>()->composing(), "another folder of plugins (repeatable)")(
      "quiet,q", "only errors and the score");
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, {}, {}, vm)) return *done;
  PredictRequest request;
  ChosenFusion fusion;
  try {
    for (const char* required : {"run", "images", "out"})
      if (!vm.count(required)) throw po::error(std::string("--") + required + " is required");
    request.run_file = vm["run"].as<std::string>();
    request.images_dir = vm["images"].as<std::string>();
    request.folds = parse_folds(vm["fold"].as<std::string>());
    request.device = vm["device"].as<std::string>();
    request.batch_size = vm["batch-size"].as<std::size_t>();
    if (vm.count("threshold")) {
      const double threshold = vm["threshold"].as<double>();
      if (!(threshold >= 0.0 && threshold < 1.0)) throw po::error("--threshold must be in [0, 1)");
      request.post_processing["threshold"] = threshold;
    }
    fusion = fusion_from(vm);
    request.fuse_boxes = [fusion](const std::vector<std::vector<ScoredBox>>& views) {
      return detection::fuse_views(views, fusion.method, fusion.options);
    };
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n\n" << kUsage << options;
    return kExitUsage;
  }
  const bool quiet = vm.count("quiet") > 0;
  const std::string out_csv = vm["out"].as<std::string>();

  std::optional<RsnaLabels> labels;
  const std::string labels_path = vm.count("labels") ? vm["labels"].as<std::string>() : "";
  if (!labels_path.empty()) labels = read_rsna_labels(labels_path, "", "");
  // Checked before any model runs: every image must be labelled (as `chestlab score` demands).
  auto check_labelled = [&](const std::vector<std::string>& ids) {
    if (!labels) return;
    std::vector<std::string> unknown;
    for (const auto& id : ids)
      if (!labels->find(id)) unknown.push_back(id);
    if (!unknown.empty())
      throw DataError(labels_path, fmt::format("{} image(s) of {} are not in this labels table, e.g. {}",
                                               unknown.size(), request.images_dir, unknown.front()));
  };
  std::string overlays;
  if (vm.count("overlays")) {
    overlays = vm["overlays"].as<std::string>();
    fs::create_directories(overlays);
  }

  rsna::Submission submission;
  rsna::RsnaMapAccumulator accumulator;
  std::size_t boxes = 0;
  auto write_image = [&](const ImagePrediction& p) {
    submission.push_back({p.id, p.boxes});
    boxes += p.boxes.size();
    const std::vector<Box>* truth = labels ? &labels->find(p.id)->boxes : nullptr;
    if (truth) accumulator.add(*truth, p.boxes);
    if (!overlays.empty()) write_png((fs::path(overlays) / (p.id + ".png")).string(), overlay(p, truth));
    if (!quiet && submission.size() % 100 == 0) std::cout << fmt::format("\r{} images", submission.size()) << std::flush;
  };
  auto registry = discover_plugins(vm);
  const PredictSummary summary = predict_run(request, *registry, PredictCallbacks{check_labelled, write_image});
  for (const auto& note : summary.notes) std::cerr << "note: " << note << "\n";
  rsna::write_submission(out_csv, submission);
  if (!quiet) {
    std::cout << fmt::format("\rpredicted {} images in {:.1f} s with fold(s) {} of {} ({} model '{}', {} px)\n",
                             summary.images, summary.seconds, fmt::join(summary.folds, ","), request.run_file,
                             summary.output_kind, summary.model, summary.input_size);
    if (summary.output_kind == "mask")
      std::cout << fmt::format("boxes from the {}mask: {}\n", summary.folds.size() > 1 ? "fold-averaged " : "",
                               summary.post.describe());
    else if (summary.folds.size() > 1)
      std::cout << fmt::format("boxes of {} folds fused: {}\n", summary.folds.size(), fusion.describe());
    std::cout << fmt::format("wrote {} ({} rows, {} boxes)\n", out_csv, submission.size(), boxes);
    if (!overlays.empty()) std::cout << fmt::format("overlays: {}/<patientId>.png\n", overlays);
  }
  if (labels) {
    const rsna::MapResult result = accumulator.result();
    std::cout << fmt::format("score: {:.6f}\n", result.score);
    std::cout << fmt::format("images counted: {} (skipped {} with neither boxes nor predictions)\n",
                             result.images_counted, result.images_skipped);
  }
  return kExitOk;
}

const Command registration{"predict", "predict boxes with a run's models and write an RSNA submission",
                           &run_predict};

}  // namespace
}  // namespace chestlab::app

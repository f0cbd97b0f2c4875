#include "chestlab/host/predict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <thread>

#include "chestlab/errors.h"
#include "chestlab/host/loader.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/host/weights.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/engine/runfile.h"

namespace fs = std::filesystem;

namespace chestlab {

namespace {

// A labels table naming every image as a negative patient: the run's dataset then reads the
// folder exactly as in training, without needing (or seeing) the truth.
class TemporaryLabels {
 public:
  explicit TemporaryLabels(const std::vector<std::string>& ids) {
    dir_ = fs::temp_directory_path() / fmt::format("chestlab-predict-{}-{}", getpid(), counter()++);
    fs::create_directories(dir_);
    std::vector<RsnaPatient> patients(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) patients[i].patient_id = ids[i];
    write_rsna_labels(path(), patients);
  }
  ~TemporaryLabels() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  TemporaryLabels(const TemporaryLabels&) = delete;
  TemporaryLabels& operator=(const TemporaryLabels&) = delete;
  std::string path() const { return (dir_ / "labels.csv").string(); }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  fs::path dir_;
};

std::vector<int> choose_folds(const RunInfo& run, const std::vector<int>& wanted) {
  std::vector<int> usable;
  for (const auto& f : run.folds)
    if (f.best_epoch >= 0 && !f.weights.empty()) usable.push_back(f.index);
  if (wanted.empty()) {
    if (usable.empty())
      throw ConfigError(fmt::format("{}: no fold has best weights yet (nothing to predict with)", run.path));
    for (const auto& f : run.folds)
      if (std::find(usable.begin(), usable.end(), f.index) == usable.end())
        std::cerr << fmt::format("note: fold {} has no best weights ({}); predicting without it\n", f.index,
                                 to_string(f.status));
    return usable;
  }
  for (int k : wanted)
    if (std::find(usable.begin(), usable.end(), k) == usable.end())
      throw ConfigError(fmt::format("{}: fold {} {}; folds with weights: [{}]", run.path, k,
                                    run.fold(k) ? "has no best weights" : "does not exist", fmt::join(usable, ", ")));
  return wanted;
}

// The run's dataset, reading `images_dir` through a temporary labels table.
std::shared_ptr<Dataset> folder_dataset(const ExperimentConfig& config, const PluginRegistry& registry,
                                        const std::string& images_dir, const std::string& labels_csv) {
  Params params = config.dataset.params;
  if (!params.has("images") || !params.has("labels"))
    throw ConfigError(fmt::format(
        "predict reads a folder of <patientId>.dcm through the run's dataset, but dataset '{}' has no `images` "
        "and `labels` parameters (rsna_pneumonia has)",
        config.dataset.plugin));
  params.set("images", fs::absolute(images_dir).string());
  params.set("labels", labels_csv);
  // The truth is not the dataset's business here, nor are other tables; the preprocessing
  // cache is keyed by patient id and could hold another folder's image of the same id.
  for (const char* key : {"class_info", "headers", "cache"})
    if (params.has(key)) params.set(key, std::string());
  if (params.has("limit")) params.set("limit", std::int64_t{0});
  return registry.make_dataset(config.dataset.plugin, params, DatasetContext{config.base_dir, config.seed});
}

cv::Mat to_mat(const torch::Tensor& hw) {
  const torch::Tensor t = hw.to(torch::kCPU, torch::kFloat32).contiguous();
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC1, t.data_ptr<float>()).clone();
}

// Box-model output [N, 5] (score, x, y, w, h) in input pixels -> original pixels, clipped to the image.
std::vector<ScoredBox> scaled_boxes(const torch::Tensor& boxes, double sx, double sy, int cols, int rows) {
  std::vector<ScoredBox> out;
  if (!boxes.defined() || boxes.numel() == 0) return out;
  const torch::Tensor b = boxes.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = b.accessor<double, 2>();
  for (std::int64_t i = 0; i < b.size(0); ++i) {
    const double x0 = std::clamp(a[i][1] * sx, 0.0, static_cast<double>(cols));
    const double y0 = std::clamp(a[i][2] * sy, 0.0, static_cast<double>(rows));
    const double x1 = std::clamp((a[i][1] + a[i][3]) * sx, 0.0, static_cast<double>(cols));
    const double y1 = std::clamp((a[i][2] + a[i][4]) * sy, 0.0, static_cast<double>(rows));
    if (x1 > x0 && y1 > y0) out.push_back({std::clamp(a[i][0], 0.0, 1.0), {x0, y0, x1 - x0, y1 - y0}});
  }
  return out;
}

// Loads samples [begin, end) with `workers` threads.
std::vector<Sample> load_samples(const Dataset& dataset, std::size_t begin, std::size_t end, std::size_t workers) {
  std::vector<Sample> samples(end - begin);
  std::vector<std::exception_ptr> errors(std::max<std::size_t>(workers, 1));
  auto work = [&](std::size_t w) {
    try {
      for (std::size_t i = begin + w; i < end; i += errors.size()) samples[i - begin] = dataset.get(i);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < errors.size(); ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return samples;
}

}  // namespace

std::string PostProcessing::describe() const {
  std::string text = fmt::format("threshold {}, confidence {}, min_area {}, min_score {}", from_mask.threshold,
                                 from_mask.confidence == BoxConfidence::Max ? "max" : "mean", from_mask.min_area,
                                 min_score);
  if (from_mask.gate_threshold) text += fmt::format(", gate {}", *from_mask.gate_threshold);
  return text + " (" + source + ")";
}

PostProcessing post_processing_of(const ExperimentConfig& config) {
  PostProcessing post;
  post.source = "defaults";
  for (const auto& m : config.metrics) {
    if (m.plugin != "rsna_map") continue;
    const Params& p = m.params;
    if (p.has("threshold")) post.from_mask.threshold = p.real("threshold");
    if (p.has("confidence")) post.from_mask.confidence = p.str("confidence") == "max" ? BoxConfidence::Max : BoxConfidence::Mean;
    if (p.has("min_area")) post.from_mask.min_area = p.real("min_area");
    if (p.has("gate") && p.real("gate") > 0.0) post.from_mask.gate_threshold = p.real("gate");
    if (p.has("min_score")) post.min_score = p.real("min_score");
    post.source = "metric " + m.name;
    break;
  }
  return post;
}

std::vector<std::string> dicom_patient_ids(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir, "not a folder");
  std::vector<std::string> ids;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".dcm" && !entry.is_directory()) ids.push_back(entry.path().stem().string());
  }
  if (ec) throw DataError(dir, "cannot list the folder: " + ec.message());
  if (ids.empty()) throw DataError(dir, "no <patientId>.dcm file in this folder");
  std::sort(ids.begin(), ids.end());
  return ids;
}

PredictSummary predict_run(const PredictRequest& request, const std::function<void(const ImagePrediction&)>& each) {
  const auto t0 = std::chrono::steady_clock::now();
  const RunInfo run = read_run(request.run_file, LoadWeights::Yes);
  auto registry = std::make_shared<PluginRegistry>();
  registry->discover(request.plugin_dirs);
  for (const auto& problem : registry->problems()) std::cerr << "warning: plugin skipped: " << problem << "\n";
  const ExperimentConfig config =
      parse_experiment(run.config_toml, request.run_file + ":/config", run.environment.base_dir, {}, *registry);

  PredictSummary summary;
  summary.folds = choose_folds(run, request.folds);
  summary.model = config.model.plugin;
  summary.post = post_processing_of(config);
  if (request.threshold) {
    summary.post.from_mask.threshold = *request.threshold;
    summary.post.source += ", threshold from the command line";
  }

  const torch::Device device = choose_device(request.device.empty() ? config.train.device : request.device);
  configure_threads(config.train.threads);
  configure_determinism(config.train.deterministic);

  std::vector<std::shared_ptr<Model>> models;
  for (int k : summary.folds) {
    auto model = registry->make_model(config.model.plugin, config.model.params, ModelContext{});
    load_best_weights(*model, *run.fold(k));
    model->to(device);
    model->eval();
    models.push_back(std::move(model));
  }
  const bool mask_model = models.front()->output_kind() == OutputKind::Mask;
  summary.output_kind = mask_model ? "mask" : "boxes";

  const std::vector<std::string> ids = dicom_patient_ids(request.images_dir);
  TemporaryLabels labels(ids);
  auto dataset = folder_dataset(config, *registry, request.images_dir, labels.path());
  if (dataset->size() != ids.size())
    throw std::runtime_error(fmt::format("dataset '{}' made {} samples of {} files", config.dataset.plugin,
                                         dataset->size(), ids.size()));

  const std::size_t batch = request.batch_size > 0 ? request.batch_size
                                                   : static_cast<std::size_t>(std::max<std::int64_t>(config.train.batch_size, 1));
  const std::size_t workers = static_cast<std::size_t>(std::max<std::int64_t>(config.train.workers, 1));
  torch::NoGradGuard no_grad;
  auto fetch = [&](std::size_t begin) {
    return std::async(std::launch::async, [&, begin] {
      return load_samples(*dataset, begin, std::min(begin + batch, ids.size()), workers);
    });
  };
  auto pending = fetch(0);
  for (std::size_t begin = 0; begin < ids.size(); begin += batch) {
    std::vector<Sample> samples = pending.get();
    if (begin + batch < ids.size()) pending = fetch(begin + batch);
    std::vector<std::size_t> indices(samples.size());
    for (std::size_t i = 0; i < samples.size(); ++i) indices[i] = begin + i;
    std::vector<cv::Mat> images;
    for (const auto& s : samples) images.push_back(to_mat(s.image[0]));
    const Batch host = collate(samples, indices, false);
    const torch::Tensor input = host.images.to(device);
    summary.input_size = input.size(2);

    torch::Tensor mask_sum, image_sum;
    std::vector<std::vector<torch::Tensor>> fold_boxes(samples.size());
    for (auto& model : models) {
      Prediction p = model->predict(model->forward(input));
      if (mask_model) {
        if (!p.mask_prob.defined())
          throw std::runtime_error(fmt::format("model '{}' says it outputs masks but gave no mask_prob", summary.model));
        mask_sum = mask_sum.defined() ? mask_sum + p.mask_prob : p.mask_prob;
      } else {
        if (p.boxes.size() != samples.size())
          throw std::runtime_error(fmt::format("model '{}' gave boxes for {} of {} images", summary.model,
                                               p.boxes.size(), samples.size()));
        for (std::size_t i = 0; i < samples.size(); ++i) fold_boxes[i].push_back(p.boxes[i]);
      }
      if (p.image_prob.defined()) image_sum = image_sum.defined() ? image_sum + p.image_prob : p.image_prob;
    }
    const double n = static_cast<double>(models.size());
    const torch::Tensor mask_mean = mask_sum.defined() ? (mask_sum / n).to(torch::kCPU) : torch::Tensor();
    const torch::Tensor image_mean = image_sum.defined() ? (image_sum / n).to(torch::kCPU) : torch::Tensor();
    if (mask_model && summary.post.from_mask.gate_threshold && !image_mean.defined())
      throw ConfigError(fmt::format("the run's rsna_map gate is set, but model '{}' gives no image-level probability",
                                    summary.model));

    for (std::size_t i = 0; i < samples.size(); ++i) {
      const auto idx = static_cast<std::int64_t>(i);
      ImagePrediction out;
      out.id = ids[begin + i];
      out.original_rows = static_cast<int>(samples[i].original_height);
      out.original_cols = static_cast<int>(samples[i].original_width);
      out.image = images[i];
      const double sx = static_cast<double>(out.original_cols) / static_cast<double>(input.size(3));
      const double sy = static_cast<double>(out.original_rows) / static_cast<double>(input.size(2));
      if (mask_model) {
        out.probability = to_mat(mask_mean[idx][0]);
        BoxesFromMaskOptions o = summary.post.from_mask;
        o.scale_x = sx;
        o.scale_y = sy;
        std::optional<double> score;
        if (o.gate_threshold) score = image_mean[idx].item<double>();
        out.boxes = boxes_from_mask(out.probability, o, score);
      } else {
        for (const auto& b : fold_boxes[i]) {
          auto scaled = scaled_boxes(b, sx, sy, out.original_cols, out.original_rows);
          out.boxes.insert(out.boxes.end(), scaled.begin(), scaled.end());
        }
      }
      out.boxes.erase(std::remove_if(out.boxes.begin(), out.boxes.end(),
                                     [&](const ScoredBox& b) { return b.score < summary.post.min_score; }),
                      out.boxes.end());
      std::stable_sort(out.boxes.begin(), out.boxes.end(),
                       [](const ScoredBox& a, const ScoredBox& b) { return a.score > b.score; });
      each(out);
      ++summary.images;
    }
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace chestlab

// RSNA image input speed: one radiograph's DICOM read + JPEG decode + resize, and the
// rsna_pneumonia dataset through the batch loader with and without the preprocessing cache.
//
//   bench_rsna_io [--dicom FILE.dcm] [--corpus DIR] [--patients N] [--size S] [--repeat R]
//
// --dicom   default: <shared data>/dicom/cxr_jpeg_baseline_1024.dcm (1024 x 1024 JPEG Baseline)
// --corpus  a folder written by `chestlab synth rsna` (stage_2_train_labels.csv + .dcm files);
//           default: the first N patients (default 200) of the shared real labels, generated
//           once into $TMPDIR/chestlab-bench-rsna-<N> and reused
// Loader rows: all patients of the corpus at S px (default 256), batch 32, no augmentation,
// in file order; "cache cold" starts from an empty cache (decodes and writes every image),
// "cache warm" is the next pass over the filled cache.
#include <fmt/format.h>
#include <torch/torch.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "chestlab/host/loader.h"
#include "chestlab/host/registry.h"
#include "chestlab/host/runtime.h"
#include "chestlab/imaging/dicom.h"
#include "chestlab/imaging/image_ops.h"
#include "chestlab/rsna/cache.h"
#include "chestlab/rsna/synth_corpus.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

fs::path shared_data() {
  if (const char* env = std::getenv("CHESTLAB_SHARED_DATA")) return env;
  return fs::path(CHESTLAB_SOURCE_DIR) / ".." / "shared" / "data";
}

void row(const std::string& measure, double value, const char* unit) {
  std::cout << fmt::format("| {:<58} | {:>9.2f} {:<8} |\n", measure, value, unit);
}

double loader_pass(const std::shared_ptr<const Dataset>& dataset, std::size_t workers) {
  std::vector<std::size_t> all(dataset->size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  LoaderOptions o;
  o.batch_size = 32;
  o.workers = workers;
  o.prefetch = 4;
  o.shuffle = false;
  const auto t0 = Clock::now();
  BatchLoader loader(dataset, all, nullptr, o);
  std::size_t n = 0;
  while (auto b = loader.next()) n += static_cast<std::size_t>(b->size());
  return static_cast<double>(n) / since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dicom = (shared_data() / "dicom" / "cxr_jpeg_baseline_1024.dcm").string();
  std::string corpus;
  std::size_t patients = 200;
  int size = 256, repeat = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--dicom") dicom = v;
    else if (a == "--corpus") corpus = v;
    else if (a == "--patients") patients = std::stoul(v);
    else if (a == "--size") size = std::stoi(v);
    else if (a == "--repeat") repeat = std::stoi(v);
    else {
      std::cerr << "unknown option " << a << " (see the comment at the top of bench_rsna_io.cpp)\n";
      return 2;
    }
  }
  try {
    const int threads = configure_threads(0);
    std::cout << fmt::format("DICOM file {}; {} LibTorch threads\n\n", dicom, threads);
    std::cout << fmt::format("| {:<58} | {:>18} |\n|{:-<60}|{:->20}|\n", "measure", "value", "", "");

    // One radiograph, `repeat` times (the file stays in the page cache: decoding, not disk).
    rsna::RsnaPreprocess params;
    params.image_size = size;
    double read_s = 0, resize_s = 0, total_s = 0;
    for (int r = -1; r < repeat; ++r) {  // r = -1 warms up
      auto t0 = Clock::now();
      const DicomImage image = read_dicom(dicom);
      const double t_read = since(t0);
      t0 = Clock::now();
      const cv::Mat small = resize_image(normalize_minmax(image.pixels), size, size);
      const double t_resize = since(t0);
      t0 = Clock::now();
      const rsna::PreparedImage prepared = rsna::preprocess_dicom(dicom, params);
      const double t_total = since(t0);
      if (r >= 0) read_s += t_read, resize_s += t_resize, total_s += t_total;
    }
    row("DICOM read + JPEG decode (1024 x 1024), per image", 1000 * read_s / repeat, "ms");
    row(fmt::format("min-max + area resize to {} px, per image", size), 1000 * resize_s / repeat, "ms");
    row(fmt::format("preprocess_dicom (read+decode+resize+16 bit), per image"), 1000 * total_s / repeat, "ms");

    if (corpus.empty()) {
      const fs::path dir = fs::temp_directory_path() / fmt::format("chestlab-bench-rsna-{}", patients);
      if (!fs::exists(dir / "stage_2_train_labels.csv")) {
        rsna::SynthCorpusOptions o;
        o.labels_csv = (shared_data() / "rsna" / "stage_2_train_labels.csv").string();
        o.out_dir = dir.string();
        o.limit = patients;
        o.seed = 1;
        std::cerr << fmt::format("writing a {}-patient synthetic corpus to {} ...\n", patients, dir.string());
        rsna::write_synth_corpus(o);
      }
      corpus = dir.string();
    }

    auto registry = std::make_shared<PluginRegistry>();
    registry->discover();
    const fs::path cache = fs::temp_directory_path() / fmt::format("chestlab-bench-rsna-cache-{}.h5", ::getpid());
    auto open = [&](const std::string& cache_path) {
      const Params p = registry->params_for(Kind::Dataset, "rsna_pneumonia",
                                            {{"labels", (fs::path(corpus) / "stage_2_train_labels.csv").string()},
                                             {"images", corpus},
                                             {"image_size", std::int64_t{size}},
                                             {"cache", cache_path}});
      return std::shared_ptr<const Dataset>(registry->make_dataset("rsna_pneumonia", p, DatasetContext{}));
    };
    const std::size_t n = open("")->size();
    for (std::size_t workers : {1, 2}) {
      row(fmt::format("loader {} px, {} worker(s), no cache ({} images)", size, workers, n),
          loader_pass(open(""), workers), "images/s");
      fs::remove(cache);
      fs::remove(cache.string() + ".lock");
      {
        auto cached = open(cache.string());
        row(fmt::format("loader {} px, {} worker(s), cache cold (filling)", size, workers), loader_pass(cached, workers),
            "images/s");
      }
      row(fmt::format("loader {} px, {} worker(s), cache warm", size, workers), loader_pass(open(cache.string()), workers),
          "images/s");
    }
    std::cout << fmt::format("\ncache file {}: {:.1f} MB for {} images\n", cache.string(),
                             static_cast<double>(fs::file_size(cache)) / 1e6, n);
    fs::remove(cache);
    fs::remove(cache.string() + ".lock");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

// RSNA image input speed: one radiograph's DICOM read + JPEG decode + resize (chestlab's JPEG
// fast and exact paths beside the notebooks' pydicom + skimage pipeline), and the
// rsna_pneumonia dataset through the batch loader with and without the preprocessing cache.
//
//   bench_rsna_io [--dicom FILE.dcm] [--corpus DIR] [--patients N] [--size S] [--repeat R]
//
// --dicom   default: <shared data>/dicom/cxr_jpeg_baseline_1024.dcm (1024 x 1024 JPEG Baseline)
// --corpus  a folder written by `chestlab synth rsna` (stage_2_train_labels.csv + .dcm files);
//           default: the first N patients (default 200) of the shared real labels, generated
//           once into $TMPDIR/chestlab-bench-rsna-<N> and reused
// Loader rows: all patients of the corpus at S px (default 256), batch 32, no augmentation,
// in file order; "cache being filled" starts from an empty cache (decodes and writes every
// image), "cache warm" reads the filled cache (best of 3 passes); then the warm cache's get()
// alone on 1 and 2 threads and Dataset::get on one.
#include <fmt/format.h>
#include <torch/torch.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

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

// Mean milliseconds of fn() over `repeat` calls, after one warm-up call.
template <class Fn>
double mean_ms(int repeat, Fn fn) {
  fn();
  const auto t0 = Clock::now();
  for (int r = 0; r < repeat; ++r) fn();
  return 1000.0 * since(t0) / repeat;
}

// The notebooks' pydicom + skimage pipeline on the same file (benchmarks/pydicom_pipeline.py),
// one core: its "decode_ms" and "pipeline_ms", or why it could not run.
struct PythonTimes {
  double decode_ms = 0, pipeline_ms = 0;
  std::string unavailable;  // non-empty: why there are no times
};

PythonTimes python_pipeline(const std::string& dicom, int size, int repeat) {
  const char* python = std::getenv("CHESTLAB_PYTHON");
  const std::string command = fmt::format(
      "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 '{}' '{}/benchmarks/pydicom_pipeline.py' '{}' {} {} 2>&1",
      python ? python : "/usr/bin/python3", CHESTLAB_SOURCE_DIR, dicom, size, repeat);
  PythonTimes out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {0, 0, "cannot start python"};
  std::string text;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) text += buffer;
  const int status = ::pclose(pipe);
  std::istringstream lines(text);
  std::string name;
  double value = 0;
  int found = 0;
  while (lines >> name >> value) {
    if (name == "decode_ms") out.decode_ms = value, ++found;
    if (name == "pipeline_ms") out.pipeline_ms = value, ++found;
  }
  if (status != 0 || found != 2)
    out.unavailable = "pydicom_pipeline.py failed (python3-pydicom, python3-skimage installed?): " +
                      text.substr(0, 300);
  return out;
}

// One radiograph to `size` px on one core (OpenCV's own threads off): chestlab's JPEG fast
// path and exact path (preprocess_dicom, decode = fast / exact) and the notebooks' pipeline,
// in one run, with the ratios and the fast path's pixel difference from the exact one.
void fast_exact_python_rows(const std::string& dicom, int size, int repeat) {
  const int opencv_threads = cv::getNumThreads();
  cv::setNumThreads(1);
  rsna::RsnaPreprocess fast, exact;
  fast.image_size = exact.image_size = size;
  fast.fast_decode = true;
  exact.fast_decode = false;
  const double fast_ms = mean_ms(repeat, [&] { rsna::preprocess_dicom(dicom, fast); });
  const double exact_ms = mean_ms(repeat, [&] { rsna::preprocess_dicom(dicom, exact); });
  cv::setNumThreads(opencv_threads);
  const PythonTimes py = python_pipeline(dicom, size, repeat);

  row(fmt::format("DICOM -> {} px, one core: chestlab fast path", size), fast_ms, "ms");
  row(fmt::format("DICOM -> {} px, one core: chestlab exact path", size), exact_ms, "ms");
  row("  exact / fast", exact_ms / fast_ms, "x");
  if (py.unavailable.empty()) {
    row(fmt::format("DICOM -> {} px, one core: pydicom + skimage (notebooks)", size), py.pipeline_ms, "ms");
    row("  pydicom + skimage / fast", py.pipeline_ms / fast_ms, "x");
    row("pydicom decode alone (dcmread + pixel_array), one core", py.decode_ms, "ms");
    row("  pydicom decode alone / fast", py.decode_ms / fast_ms, "x");
  } else {
    std::cout << "| pydicom + skimage: " << py.unavailable << "\n";
  }
  // In 8-bit grey levels of the [0, 1] result (min-max normalised, resized, 16-bit).
  cv::Mat a = rsna::unit_from_u16(rsna::preprocess_dicom(dicom, fast).pixels);
  cv::Mat b = rsna::unit_from_u16(rsna::preprocess_dicom(dicom, exact).pixels);
  cv::Mat difference;
  cv::absdiff(a, b, difference);
  double max_difference = 0;
  cv::minMaxLoc(difference, nullptr, &max_difference);
  row(fmt::format("fast - exact at {} px: mean |difference|", size), 255.0 * cv::mean(difference)[0], "/255");
  row(fmt::format("fast - exact at {} px: max |difference|", size), 255.0 * max_difference, "/255");
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

using OpenDataset = std::function<std::shared_ptr<const Dataset>(const std::string& cache_path)>;

// Best of `passes` loader passes (the machine is shared: the best is the least disturbed).
double best_loader_pass(const OpenDataset& open, const std::string& cache_path, std::size_t workers, int passes) {
  double best = 0;
  for (int p = 0; p < passes; ++p) best = std::max(best, loader_pass(open(cache_path), workers));
  return best;
}

// Entries/s of RsnaImageCache::get alone over `keys`, shared out among `threads` threads.
double cache_get_rate(const std::string& cache_path, const rsna::RsnaPreprocess& params,
                      const std::vector<std::string>& keys, std::size_t threads, int passes) {
  rsna::RsnaImageCache cache(cache_path, params);
  if (!cache.usable()) throw std::runtime_error("bench: the cache is not usable: " + cache.open_outcome());
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    std::atomic<std::size_t> misses{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (std::size_t i = t; i < keys.size(); i += threads)
          if (!cache.get(keys[i])) ++misses;
      });
    for (auto& th : pool) th.join();
    if (misses > 0) throw std::runtime_error("bench: the warm cache missed entries");
    best = std::max(best, static_cast<double>(keys.size()) / since(t0));
  }
  return best;
}

// Samples/s of Dataset::get on one thread (no loader, no collation).
double dataset_get_rate(const std::shared_ptr<const Dataset>& dataset, int passes) {
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < dataset->size(); ++i) (void)dataset->get(i);
    best = std::max(best, static_cast<double>(dataset->size()) / since(t0));
  }
  return best;
}

// The loader with 1 and 2 workers without a cache, while filling one (from empty) and from
// the warm cache (best of 3 passes), then the warm cache's parts: get() alone on 1 and 2
// threads (its reads scale when inflating runs outside HDF5's lock) and Dataset::get (adds
// float conversion, tensors and the box mask) on one thread.
void cache_rows(const OpenDataset& open, const fs::path& cache, int size) {
  constexpr int kPasses = 3;
  const auto plain = open("");
  const std::size_t n = plain->size();
  rsna::RsnaPreprocess params;  // the dataset's defaults, as `open` uses them: the same cache key
  params.image_size = size;
  auto remove_cache = [&] {
    fs::remove(cache);
    fs::remove(cache.string() + ".lock");
  };
  for (std::size_t workers : {1, 2}) {
    row(fmt::format("loader {} px, {} worker(s), no cache ({} images)", size, workers, n),
        best_loader_pass(open, "", workers, 1), "images/s");
    remove_cache();
    row(fmt::format("loader {} px, {} worker(s), cache being filled", size, workers),
        loader_pass(open(cache.string()), workers), "images/s");
    row(fmt::format("loader {} px, {} worker(s), cache warm (best of {})", size, workers, kPasses),
        best_loader_pass(open, cache.string(), workers, kPasses), "images/s");
  }
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < n; ++i) keys.push_back(plain->info(i).id);
  for (std::size_t threads : {1, 2})
    row(fmt::format("warm cache get() alone, {} thread(s)", threads),
        cache_get_rate(cache.string(), params, keys, threads, kPasses), "images/s");
  row("warm cache Dataset::get, 1 thread", dataset_get_rate(open(cache.string()), kPasses), "images/s");
  std::cout << fmt::format("\ncache file {}: {:.1f} MB for {} images\n", cache.string(),
                           static_cast<double>(fs::file_size(cache)) / 1e6, n);
  remove_cache();
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
    rsna::RsnaPreprocess exact_params = params;  // these three rows take the exact path apart
    exact_params.fast_decode = false;
    double read_s = 0, resize_s = 0, total_s = 0;
    for (int r = -1; r < repeat; ++r) {  // r = -1 warms up
      auto t0 = Clock::now();
      const DicomImage image = read_dicom(dicom);
      const double t_read = since(t0);
      t0 = Clock::now();
      const cv::Mat small = resize_image(normalize_minmax(image.pixels), size, size);
      const double t_resize = since(t0);
      t0 = Clock::now();
      const rsna::PreparedImage prepared = rsna::preprocess_dicom(dicom, exact_params);
      const double t_total = since(t0);
      if (r >= 0) read_s += t_read, resize_s += t_resize, total_s += t_total;
    }
    row("DICOM read + JPEG decode (1024 x 1024), per image", 1000 * read_s / repeat, "ms");
    row(fmt::format("min-max + area resize to {} px, per image", size), 1000 * resize_s / repeat, "ms");
    row(fmt::format("preprocess_dicom (read+decode+resize+16 bit), per image"), 1000 * total_s / repeat, "ms");
    fast_exact_python_rows(dicom, size, repeat);

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
    cache_rows(open, cache, size);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

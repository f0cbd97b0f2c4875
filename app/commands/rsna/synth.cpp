// chestlab synth rsna --labels CSV [--class-info CSV] [--headers CSV.gz] --out DIR [--limit N] [--seed S]
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <iostream>

#include "chestlab/rsna/synth_corpus.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab synth rsna --labels CSV [--class-info CSV] [--headers CSV.gz] --out DIR\n"
    "                           [--limit N] [--seed S] [--threads N] [--quality Q]\n\n"
    "Writes a synthetic corpus in the RSNA Pneumonia Detection Challenge's format: one\n"
    "<patientId>.dcm per patient of the labels table (1024x1024, 8-bit MONOCHROME2, JPEG\n"
    "Baseline) with opacities drawn inside the patient's boxes, and the label tables\n"
    "stage_2_train_labels.csv and stage_2_detailed_class_info.csv for the patients written.\n"
    "The same seed gives byte-identical files whatever --threads.\n\n";

std::string megabytes(std::uintmax_t bytes) { return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6); }

int run_synth_rsna(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "labels", po::value<std::string>(), "stage_2_train_labels.csv (required)")(
      "class-info", po::value<std::string>()->default_value(""), "stage_2_detailed_class_info.csv")(
      "headers", po::value<std::string>()->default_value(""), "DICOM headers table (.csv or .csv.gz)")(
      "out", po::value<std::string>(), "output folder (required)")(
      "limit", po::value<std::size_t>()->default_value(0), "only the first N patients (0 = all)")(
      "seed", po::value<std::uint64_t>()->default_value(0), "seed of the synthetic images")(
      "threads", po::value<int>()->default_value(2), "images drawn in parallel")(
      "quality", po::value<int>()->default_value(95), "JPEG quality factor, 1..100");
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, {}, {}, vm)) return *done;
  if (!vm.count("labels") || !vm.count("out")) {
    std::cerr << "error: --labels and --out are required\n\n" << kUsage << options;
    return kExitUsage;
  }
  rsna::SynthCorpusOptions o;
  o.labels_csv = vm["labels"].as<std::string>();
  o.class_info_csv = vm["class-info"].as<std::string>();
  o.headers_csv = vm["headers"].as<std::string>();
  o.out_dir = vm["out"].as<std::string>();
  o.limit = vm["limit"].as<std::size_t>();
  o.seed = vm["seed"].as<std::uint64_t>();
  o.threads = vm["threads"].as<int>();
  o.jpeg_quality = vm["quality"].as<int>();
  if (o.threads < 1 || o.jpeg_quality < 1 || o.jpeg_quality > 100) {
    std::cerr << "error: --threads must be >= 1 and --quality in 1..100\n";
    return kExitUsage;
  }

  const rsna::SynthCorpusSummary summary = rsna::write_synth_corpus(o, [](const rsna::SynthProgress& p) {
    std::cout << fmt::format("\r{}/{} images, {:.1f} s, {}", p.done, p.total, p.seconds, megabytes(p.bytes))
              << std::flush;
  });
  std::cout << "\n";
  for (const auto& w : summary.warnings) std::cerr << "warning: " << w << "\n";
  const double per_image = summary.patients ? summary.seconds / static_cast<double>(summary.patients) : 0.0;
  const double per_file = summary.patients ? static_cast<double>(summary.dicom_bytes) / summary.patients : 0.0;
  std::cout << fmt::format(
      "wrote {} images ({} boxes) to {} in {:.1f} s ({:.3f} s per image with {} thread(s)), {} of DICOM "
      "({:.0f} bytes per file)\n{}\n{}\n",
      summary.patients, summary.boxes, o.out_dir, summary.seconds, per_image, o.threads,
      megabytes(summary.dicom_bytes), per_file, summary.labels_csv, summary.class_info_csv);
  return kExitOk;
}

int run_synth(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: chestlab synth rsna [options]   (see `chestlab synth rsna --help`)\n\n"
                 "Synthetic data sets in the formats of real ones:\n"
                 "  rsna   the RSNA Pneumonia Detection Challenge (DICOM + label tables)\n";
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "rsna") return run_synth_rsna(std::vector<std::string>(args.begin() + 1, args.end()));
  std::cerr << "error: unknown corpus '" << args[0] << "' (known: rsna)\n";
  return kExitUsage;
}

const Command reg{"synth", "write a synthetic corpus in a real data set's format (rsna)", &run_synth};

}  // namespace
}  // namespace chestlab::app

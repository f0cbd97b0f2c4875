// `chestlab inspect FILE.dcm`: what the DICOM reader sees, optionally the preprocessed PNG.
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <iostream>
#include <sstream>

#include "chestlab/errors.h"
#include "chestlab/imaging/dicom.h"
#include "chestlab/imaging/image_ops.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {

namespace {

struct InspectArgs {
  std::string file;
  std::string png;
  int size = 0;  // 0: keep the image's size
  std::optional<std::pair<double, double>> window;
  std::string multiframe = "first";
};

po::options_description inspect_options() {
  po::options_description opts("options");
  opts.add_options()
      ("help,h", "show this help")
      ("png", po::value<std::string>(), "write the preprocessed image to this PNG (8-bit)")
      ("size", po::value<int>(), "resize the PNG to N x N (anti-aliased when shrinking)")
      ("window", po::value<std::string>(),
       "C,W: map through the window center C / width W (modality units) instead of min-max")
      ("multiframe", po::value<std::string>()->default_value("first"),
       "first: take frame 1 of a multi-frame file; error: refuse such files");
  return opts;
}

constexpr const char* kUsage =
    "usage: chestlab inspect FILE.dcm [--png OUT.png] [--size N] [--window C,W]\n"
    "                        [--multiframe first|error]\n\n"
    "Prints what the DICOM reader sees in FILE.dcm: size, frames, bits, transfer syntax,\n"
    "photometric interpretation, rescale, value range after rescale, window and header\n"
    "metadata. With --png, writes the image as the pipeline prepares it: min-max scaled\n"
    "(or windowed with --window) to 8 bits and resized to N x N with --size.\n"
    "exit codes: 0 success, 2 bad usage, 3 the file cannot be read\n\n";

std::pair<double, double> parse_window(const std::string& text) {
  std::istringstream in(text);
  double center = 0, width = 0;
  char comma = 0;
  const bool parsed = (in >> center >> comma >> width) && comma == ',';
  if (!parsed || !(in >> std::ws).eof())
    throw ConfigError("--window '" + text + "': expected C,W such as 40,400");
  if (!(width >= 1.0)) throw ConfigError("--window '" + text + "': the width must be >= 1");
  return {center, width};
}

// Throws ConfigError on bad usage.
InspectArgs parse_args(const po::variables_map& vm) {
  InspectArgs a;
  const auto files = vm.count("file") ? vm["file"].as<std::vector<std::string>>()
                                      : std::vector<std::string>{};
  if (files.size() != 1)
    throw ConfigError(fmt::format("inspect: expected exactly one FILE.dcm, got {}", files.size()));
  a.file = files[0];
  if (vm.count("png")) a.png = vm["png"].as<std::string>();
  if (vm.count("size")) {
    a.size = vm["size"].as<int>();
    if (a.size < 1 || a.size > kMaxDicomDimension)
      throw ConfigError(fmt::format("inspect: --size {} is outside 1..{}", a.size,
                                    kMaxDicomDimension));
    if (a.png.empty()) throw ConfigError("inspect: --size only applies together with --png");
  }
  if (vm.count("window")) a.window = parse_window(vm["window"].as<std::string>());
  a.multiframe = vm["multiframe"].as<std::string>();
  return a;
}

std::string optional_number(const std::optional<double>& v) {
  return v ? fmt::format("{:g}", *v) : std::string("-");
}

void print_info(const std::string& file, const DicomInfo& i) {
  auto line = [](const char* key, const std::string& value) {
    std::cout << fmt::format("{:<22}{}\n", key, value);
  };
  line("file", file);
  line("size", fmt::format("{} rows x {} columns", i.rows, i.columns));
  line("frames", std::to_string(i.frames));
  line("samples per pixel", std::to_string(i.samples_per_pixel));
  line("bits", fmt::format("allocated {}, stored {}, high bit {}, {}", i.bits_allocated,
                           i.bits_stored, i.high_bit,
                           i.pixel_representation ? "signed" : "unsigned"));
  line("transfer syntax", fmt::format("{} ({}){}", i.transfer_syntax_name, i.transfer_syntax_uid,
                                      i.has_file_meta ? "" : ", no File Meta header"));
  line("photometric", i.photometric_interpretation);
  line("rescale", i.modality_lut ? std::string("Modality LUT Sequence")
                                 : fmt::format("slope {:g}, intercept {:g}", i.rescale_slope,
                                               i.rescale_intercept));
  line("value range", fmt::format("{:g} .. {:g} (after rescale)", i.min_value, i.max_value));
  line("window", i.window_center ? fmt::format("center {}, width {}", optional_number(i.window_center),
                                               optional_number(i.window_width))
                                 : std::string("none in the file"));
  for (const auto& note : i.notes) line("note", note);
  std::cout << "metadata\n";
  for (const auto& [key, value] : i.metadata) std::cout << fmt::format("  {:<24} {}\n", key, value);
}

void write_preview(const InspectArgs& a, const DicomImage& image) {
  // Windowed pixels are already in [0, 1]; otherwise scale by the image's own range.
  cv::Mat unit = a.window ? image.pixels : normalize_minmax(image.pixels);
  if (a.size > 0) unit = resize_image(unit, a.size, a.size);
  cv::Mat clipped;
  cv::min(unit, 1.0, clipped);  // cubic enlargement may overshoot a little
  cv::max(clipped, 0.0, clipped);
  write_png(a.png, unit_to_u8(clipped));
  std::cout << fmt::format("{:<22}{} ({} x {}, 8-bit)\n", "wrote", a.png, clipped.rows, clipped.cols);
}

int run_inspect(const std::vector<std::string>& args) {
  po::options_description hidden;
  hidden.add_options()("file", po::value<std::vector<std::string>>(), "");
  po::positional_options_description positional;
  positional.add("file", -1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, inspect_options(), hidden, positional, vm)) return *done;
  std::optional<InspectArgs> a;
  try {
    a = parse_args(vm);
    parse_multiframe_policy(a->multiframe);
  } catch (const ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n(see `chestlab inspect --help`)\n";
    return kExitUsage;
  }
  DicomReadOptions read_opts;
  read_opts.multiframe = parse_multiframe_policy(a->multiframe);
  if (a->window) {
    read_opts.apply_window = true;
    read_opts.window_center = a->window->first;
    read_opts.window_width = a->window->second;
  }
  try {
    const DicomImage image = read_dicom(a->file, read_opts);
    print_info(a->file, image.info);
    if (!a->png.empty()) write_preview(*a, image);
  } catch (const DataError& e) {
    std::cerr << "cannot read: " << e.what() << "\n";
    return kExitData;
  }
  return kExitOk;
}

const Command kInspect{"inspect", "show what the DICOM reader sees in a file", &run_inspect};

}  // namespace

}  // namespace chestlab::app

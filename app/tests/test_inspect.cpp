// `chestlab inspect` through the program: what it prints for a real radiograph, the PNG it
// writes, and exit code 3 with the reason (never a crash) for damaged files.
#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab::test;

namespace {

int inspect(const std::string& args, std::string* out) {
  return run_command(shell_quote(chestlab_exe()) + " inspect " + args, out);
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST_CASE("inspect prints the reader's view of a real radiograph and writes its PNG", "[inspect][dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const fs::path dcm = data / "dicom" / "cxr_jpeg_baseline_1024.dcm";
  const fs::path dir = scratch_dir("inspect_png");
  std::string out;
  REQUIRE(inspect(shell_quote(dcm.string()) + " --png " + shell_quote((dir / "small.png").string()) + " --size 100",
                  &out) == 0);
  INFO(out);
  CHECK(out.find("1024 rows x 1024 columns") != std::string::npos);
  CHECK(out.find("JPEG Baseline (1.2.840.10008.1.2.4.50)") != std::string::npos);
  CHECK(out.find("MONOCHROME2") != std::string::npos);
  CHECK(out.find("allocated 8, stored 8") != std::string::npos);
  CHECK(out.find("ViewPosition             PA") != std::string::npos);

  const cv::Mat small = cv::imread((dir / "small.png").string(), cv::IMREAD_UNCHANGED);
  REQUIRE_FALSE(small.empty());
  CHECK(small.rows == 100);
  CHECK(small.cols == 100);
  CHECK(small.type() == CV_8UC1);
  double lo = 0, hi = 0;
  cv::minMaxLoc(small, &lo, &hi);
  CHECK(hi - lo > 100);  // a radiograph, not a blank page

  // Without --size the PNG keeps the image's own size.
  REQUIRE(inspect(shell_quote(dcm.string()) + " --png " + shell_quote((dir / "full.png").string()), &out) == 0);
  const cv::Mat full = cv::imread((dir / "full.png").string(), cv::IMREAD_UNCHANGED);
  CHECK(full.rows == 1024);
  CHECK(full.cols == 1024);
}

TEST_CASE("inspect exits 3 with the reason on damaged files and never crashes", "[inspect][dicom]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  const std::string bytes = read_bytes(data / "dicom" / "cxr_jpeg_baseline_1024.dcm");
  REQUIRE(bytes.size() > 100000);
  const fs::path dir = scratch_dir("inspect_damaged");

  // Cut inside the JPEG data: the header parses, the pixels cannot be read.
  const fs::path truncated = dir / "truncated.dcm";
  write_bytes(truncated, bytes.substr(0, 60000));
  std::string out;
  CHECK(inspect(shell_quote(truncated.string()) + " --png " + shell_quote((dir / "t.png").string()), &out) == 3);
  INFO(out);
  CHECK(out.find("cannot read") != std::string::npos);
  CHECK(out.find(truncated.string()) != std::string::npos);
  CHECK(out.find("premature end") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "t.png"));

  const fs::path missing = dir / "missing.dcm";
  CHECK(inspect(shell_quote(missing.string()), &out) == 3);

  // Other damage: cut at several places, a flipped byte run in the pixel data, an empty file,
  // text. Each is read or refused with exit 3; a signal (exit > 128) would be a crash.
  std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""}, {"text", "this is not a DICOM file\n"}, {"preamble_only", bytes.substr(0, 132)}};
  for (std::size_t cut : {200u, 400u, 1000u, 2000u, 100000u, 127000u}) cases.push_back({"cut" + std::to_string(cut), bytes.substr(0, cut)});
  std::string scrambled = bytes;
  for (std::size_t i = scrambled.size() - 50000; i < scrambled.size() - 40000; ++i) scrambled[i] = static_cast<char>(~scrambled[i]);
  cases.push_back({"scrambled", scrambled});
  for (const auto& [name, content] : cases) {
    INFO(name);
    const fs::path file = dir / (name + ".dcm");
    write_bytes(file, content);
    const int rc = inspect(shell_quote(file.string()) + " --png " + shell_quote((dir / (name + ".png")).string()), &out);
    INFO(out);
    CHECK((rc == 0 || rc == 3));
    if (rc == 3) CHECK(out.find("cannot read") != std::string::npos);
  }
}

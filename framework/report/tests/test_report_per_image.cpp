// The report's per-image part: for a run file with per-image values, a table of their numbers,
// a histogram per metric (an SVG data URI like the curves) and the worst images; nothing of it
// for a run file without them (older files), and the page stays whole either way.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <string>

#include "chestlab/engine/runfile.h"
#include "chestlab/report/report.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

// Two finished folds of 4 images with dice and mean_iou image by image (when `per_image`);
// fold k's image i is "k-i".
RunInfo make_run(const fs::path& path, bool per_image) {
  RunMeta meta;
  meta.experiment = "pidemo";
  meta.run_id = path.stem().string();
  meta.monitor = "dice";
  RunFile file = RunFile::create(path.string(), meta, "[experiment]\nname = \"pidemo\"\n", Environment{});
  file.transaction([&](RunWriter& w) {
    for (int k = 0; k < 2; ++k) {
      std::vector<std::string> ids;
      for (int i = 0; i < 4; ++i) ids.push_back(std::to_string(k) + "-" + std::to_string(i));
      w.begin_fold(k, {"dice", "mean_iou"}, {"t"}, ids);
      HistoryRow row;
      row.epoch = 0;
      row.train_loss = 1;
      row.val_loss = 1;
      row.metrics = {0.5, 0.4};
      w.append_epoch(k, row);
      w.set_fold_best(k, 0, 0.5, {});
      if (per_image) {
        // dice: 1, 0.5, 0.25 + 0.1 k, 0 (so fold 0's image 3 and fold 1's image 3 are the worst)
        const std::vector<double> dice{1.0, 0.5, 0.25 + 0.1 * k, 0.0};
        const std::vector<double> iou{1.0, 1.0 / 3, 0.2, 0.0};
        w.set_fold_per_image(k, 0, PerImageScores{ids, {"dice", "mean_iou"}, {dice, iou}});
      }
      w.set_fold_status(k, FoldStatus::Complete);
    }
    w.write_summary();
    w.set_status(RunStatus::Complete);
  });
  return read_run(path.string(), LoadWeights::No);
}

}  // namespace

TEST_CASE("the report shows per-image histograms and worst images when the run file has them",
          "[report][per_image]") {
  const fs::path dir = test::scratch_dir("report_per_image");
  const RunInfo with = make_run(dir / "with.h5", true);
  const RunInfo without = make_run(dir / "without.h5", false);
  ReportOptions options;
  options.worst_images = 3;

  const std::string page = render_report_html({with}, options);
  CHECK(page.find("<h3>Per-image values") != std::string::npos);
  // One histogram per per-image metric, as an SVG data URI; the curves stay (loss and dice).
  CHECK(count_of(page, "class=\"per-image-histogram\"") == 2);
  CHECK(page.find("alt=\"dice per image of with\" src=\"data:image/svg+xml;base64,") != std::string::npos);
  CHECK(page.find("alt=\"mean_iou per image of with\"") != std::string::npos);
  CHECK(count_of(page, "<img ") == 4);
  // The numbers: 8 images of dice, mean (1 + .5 + .25 + 0 + 1 + .5 + .35 + 0) / 8 = 0.45,
  // 2 of 8 at 1 and 2 of 8 at 0.
  CHECK(page.find("<td>dice</td><td>validation, folds 0, 1</td><td class=\"num\">8</td><td class=\"num\">0.4500</td>") !=
        std::string::npos);
  CHECK(page.find("<td class=\"num\">25.0%</td><td class=\"num\">25.0%</td>") != std::string::npos);
  // The worst 3 of dice: 0-3 and 1-3 (0), then 0-2 (0.25).
  CHECK(count_of(page, "<table class=\"worst\">") == 2);
  CHECK(page.find("<h4>Worst 3 images by dice (validation; higher is better)</h4>") != std::string::npos);
  CHECK(page.find("<tr><td class=\"num\">0</td><td>0-3</td><td class=\"num\">0.0000</td></tr>\n"
                  "<tr><td class=\"num\">1</td><td>1-3</td><td class=\"num\">0.0000</td></tr>\n"
                  "<tr><td class=\"num\">0</td><td>0-2</td><td class=\"num\">0.2500</td></tr>") != std::string::npos);
  // Still one self-contained page.
  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page.find("</body>\n</html>\n") != std::string::npos);
  CHECK_FALSE(std::regex_search(page, std::regex(R"((src|href)\s*=\s*"(?!#|data:))", std::regex::icase)));
  CHECK(count_of(page, "<table") == count_of(page, "</table>"));

  SECTION("a run file without per-image values gets no such section") {
    const std::string plain = render_report_html({without}, options);
    CHECK(plain.find("Per-image values") == std::string::npos);
    CHECK(plain.find("per-image-histogram") == std::string::npos);
    CHECK(plain.find("class=\"worst\"") == std::string::npos);
    CHECK(count_of(plain, "<img ") == 2);
    CHECK(plain.find("</body>\n</html>\n") != std::string::npos);
    // Both together: the section in the run that has them only.
    const std::string both = render_report_html({with, without}, options);
    CHECK(count_of(both, "<h3>Per-image values") == 1);
    CHECK(count_of(both, "class=\"per-image-histogram\"") == 2);
  }
  SECTION("worst_images = 0 leaves out the worst tables, not the histograms") {
    options.worst_images = 0;
    const std::string page0 = render_report_html({with}, options);
    CHECK(page0.find("class=\"worst\"") == std::string::npos);
    CHECK(count_of(page0, "class=\"per-image-histogram\"") == 2);
  }
}

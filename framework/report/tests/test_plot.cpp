// Charts on cairo: valid PNG and SVG files of the asked size, series drawn where they must be.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>

#include "chestlab/errors.h"
#include "chestlab/report/plot.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using namespace chestlab::plot;

namespace {

cv::Mat decode_png(const std::string& bytes) {
  REQUIRE(bytes.size() > 8);
  REQUIRE(bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  cv::Mat img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
                             cv::IMREAD_COLOR);
  REQUIRE(!img.empty());
  return img;
}

// Distance of a BGR pixel from a colour.
double color_distance(const cv::Vec3b& px, const Color& c) {
  return std::abs(px[2] - c.r * 255) + std::abs(px[1] - c.g * 255) + std::abs(px[0] - c.b * 255);
}

// Is there a pixel near `c` within `radius` of (x, y)?
bool color_near(const cv::Mat& img, double x, double y, const Color& c, int radius = 3) {
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx) {
      const int px = static_cast<int>(std::lround(x)) + dx, py = static_cast<int>(std::lround(y)) + dy;
      if (px < 0 || py < 0 || px >= img.cols || py >= img.rows) continue;
      if (color_distance(img.at<cv::Vec3b>(py, px), c) < 40) return true;
    }
  return false;
}

std::size_t count_color(const cv::Mat& img, const Color& c) {
  std::size_t n = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) n += color_distance(img.at<cv::Vec3b>(y, x), c) < 40;
  return n;
}

LineChart two_lines() {
  LineChart chart;
  chart.title = "loss";
  chart.x_label = "epoch";
  chart.y_label = "value";
  chart.series.push_back({"rising", {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}});
  chart.series.push_back({"flat", {0, 4}, {3, 3}, Color{1, 0, 0}, true});
  return chart;
}

}  // namespace

TEST_CASE("nice_ticks cover the range with round steps", "[plot]") {
  CHECK(nice_ticks(0, 1, 5) == std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0});
  const auto t = nice_ticks(0.13, 0.87, 6);
  CHECK(t.front() <= 0.13);
  CHECK(t.back() >= 0.87);
  CHECK(t[1] - t[0] == Approx(0.2));
  CHECK(nice_ticks(0.13, 0.87, 8)[1] - nice_ticks(0.13, 0.87, 8)[0] == Approx(0.1));
  const auto big = nice_ticks(3, 977, 5);
  CHECK(big.front() == 0);
  CHECK(big.back() == 1000);
  CHECK(big[1] - big[0] == Approx(200));
  // A single value gets a range around it.
  const auto one = nice_ticks(5, 5);
  CHECK(one.front() < 5);
  CHECK(one.back() > 5);
  CHECK(format_tick(0.25, 0.25) == "0.25");
  CHECK(format_tick(1000, 200) == "1000");
  CHECK(format_tick(2.5, 2.5) == "2.5");
  CHECK(format_tick(1e-17, 0.1) == "0");
}

TEST_CASE("image_format_for knows png and svg only", "[plot]") {
  CHECK(image_format_for("a/b.PNG") == ImageFormat::Png);
  CHECK(image_format_for("b.svg") == ImageFormat::Svg);
  CHECK_THROWS_AS(image_format_for("b.jpg"), ConfigError);
  CHECK_THROWS_AS(image_format_for("dir.png/file"), ConfigError);
}

TEST_CASE("A line chart PNG has the asked size and its series where the frame says", "[plot]") {
  const LineChart chart = two_lines();
  const Size size{640, 400};
  const cv::Mat img = decode_png(render_chart(chart, ImageFormat::Png, size));
  CHECK(img.cols == 640);
  CHECK(img.rows == 400);
  const Frame f = chart_frame(chart, size);
  CHECK(f.left > 20);
  CHECK(f.right < 640);
  CHECK(f.x.min <= 0);
  CHECK(f.x.max >= 4);
  // The rising series (palette colour 0) passes through (1, 1) and (2.5, 2.5), not (1, 3).
  CHECK(color_near(img, f.px(1), f.py(1), palette(0)));
  CHECK(color_near(img, f.px(2.5), f.py(2.5), palette(0)));
  CHECK_FALSE(color_near(img, f.px(1), f.py(3.5), palette(0)));
  // The red dashed line at y = 3 across, and not at y = 1.
  std::size_t red_on_line = 0;
  for (double x = 0.2; x < 3.8; x += 0.2) red_on_line += color_near(img, f.px(x), f.py(3), Color{1, 0, 0}, 2);
  CHECK(red_on_line >= 10);  // dashed: most, not all, samples hit ink
  CHECK_FALSE(color_near(img, f.px(2), f.py(1), Color{1, 0, 0}));
  // Not blank: white background plus plenty of dark text and axes.
  cv::Mat gray;
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  CHECK(cv::countNonZero(gray < 100) > 500);
  CHECK(img.at<cv::Vec3b>(2, 2) == cv::Vec3b(255, 255, 255));
}

TEST_CASE("An SVG chart is an SVG document of the asked size", "[plot]") {
  const std::string svg = render_chart(two_lines(), ImageFormat::Svg, {500, 300});
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("width=\"500px\"") != std::string::npos);
  CHECK(svg.find("height=\"300px\"") != std::string::npos);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(std::regex_search(svg, std::regex("<path[^>]*stroke")));
  // save_chart writes the same document (cairo numbers its ids per surface), format from the extension.
  const fs::path dir = test::scratch_dir("plot_svg");
  save_chart(two_lines(), (dir / "c.svg").string(), {500, 300});
  save_chart(two_lines(), (dir / "c.png").string(), {500, 300});
  std::ifstream in(dir / "c.svg");
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(written.size() == Approx(svg.size()).epsilon(0.01));
  CHECK(written.find("width=\"500px\"") != std::string::npos);
  CHECK(cv::imread((dir / "c.png").string()).cols == 500);
  CHECK_THROWS_AS(save_chart(two_lines(), (dir / "c.gif").string()), ConfigError);
  CHECK_THROWS_AS(save_chart(two_lines(), (dir / "missing" / "c.png").string()), DataError);
}

TEST_CASE("Bar charts and histograms draw bars of the right height", "[plot]") {
  BarChart bars;
  bars.title = "classes";
  bars.categories = {"a", "b", "c"};
  bars.values = {10, 30, 20};
  const Size size{400, 300};
  const cv::Mat img = decode_png(render_chart(bars, ImageFormat::Png, size));
  const Frame f = chart_frame(bars, size);
  // Bar b reaches 30; bar a stops at 10.
  CHECK(color_near(img, f.px(1), f.py(28), palette(0), 1));
  CHECK(color_near(img, f.px(0), f.py(8), palette(0), 1));
  CHECK_FALSE(color_near(img, f.px(0), f.py(14), palette(0), 1));

  Histogram h;
  h.values = {0.5, 1.5, 1.6, 2.5, 2.6, 2.7};
  h.bins = 3;
  h.bin_range = Range{0, 3};
  const cv::Mat himg = decode_png(render_chart(h, ImageFormat::Png, size));
  const Frame hf = chart_frame(h, size);
  CHECK(hf.x.min == 0);
  CHECK(hf.x.max == 3);
  CHECK(color_near(himg, hf.px(2.5), hf.py(2.8), palette(0), 1));
  CHECK(color_near(himg, hf.px(0.5), hf.py(0.8), palette(0), 1));
  CHECK_FALSE(color_near(himg, hf.px(0.5), hf.py(1.5), palette(0), 1));
}

TEST_CASE("A heatmap puts its hot cell where the data says, with a colour bar", "[plot]") {
  Heatmap h;
  h.rows = 4;
  h.cols = 4;
  h.values.assign(16, 0.0);
  h.values[1 * 4 + 3] = 10;  // row 1, column 3
  h.x_extent = {0, 4};
  h.y_extent = {0, 4};
  h.rows_down = true;
  h.colorbar_label = "count";
  const Size size{400, 400};
  const cv::Mat img = decode_png(render_chart(h, ImageFormat::Png, size));
  const Frame f = chart_frame(h, size);
  CHECK(f.y_down);
  CHECK(color_near(img, f.px(3.5), f.py(1.5), viridis(1), 1));
  CHECK(color_near(img, f.px(0.5), f.py(0.5), viridis(0), 1));
  CHECK_FALSE(color_near(img, f.px(3.5), f.py(2.5), viridis(1), 1));
  // The colour bar right of the frame shows both ends of the scale.
  CHECK(color_near(img, f.right + 23, f.top + 2, viridis(1), 2));
  CHECK(color_near(img, f.right + 23, f.bottom - 2, viridis(0), 2));
}

TEST_CASE("A scatter plot draws its points", "[plot]") {
  ScatterPlot s;
  s.series.push_back({"pts", {1, 2, 3}, {1, 4, 9}, Color{0, 0.6, 0}, 4});
  const Size size{300, 300};
  const cv::Mat img = decode_png(render_chart(s, ImageFormat::Png, size));
  const Frame f = chart_frame(s, size);
  for (double x : {1.0, 2.0, 3.0}) CHECK(color_near(img, f.px(x), f.py(x * x), Color{0, 0.6, 0}, 1));
  CHECK(count_color(img, Color{0, 0.6, 0}) > 3 * 30);  // three discs of radius 4, plus the legend dot
  CHECK_FALSE(color_near(img, f.px(2), f.py(8), Color{0, 0.6, 0}, 2));
}

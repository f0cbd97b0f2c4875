// Charts drawn with cairo, written as PNG or SVG: line charts (several series, legend),
// bar charts, histograms, heatmaps with a colour bar and scatter plots, each with a title,
// axis labels and "nice" ticks (1, 2, 2.5 or 5 times a power of ten). Torch-free.
//
//   plot::LineChart chart;
//   chart.title = "fold 0";
//   chart.x_label = "epoch";
//   chart.series.push_back({"train loss", {1, 2, 3}, {0.9, 0.6, 0.5}});
//   plot::save_chart(chart, "loss.svg");                // format from the extension
//   std::string svg = plot::render_chart(chart, plot::ImageFormat::Svg, {640, 400});
//
// Axis ranges come from the data, widened to the enclosing ticks, unless set explicitly.
// Non-finite values (NaN, inf) are left out: a NaN in a line series breaks the line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace chestlab::plot {

struct Color {
  double r = 0, g = 0, b = 0, a = 1;  // 0..1
};
// A qualitative palette (Tableau 10), cycling: colour of the i-th series by default.
Color palette(std::size_t i);
// The viridis colour map at t in [0, 1] (clamped), as the heatmaps draw it.
Color viridis(double t);

struct Range {
  double min = 0, max = 1;
};

struct Size {
  int width = 800;   // pixels (PNG) or px units (SVG)
  int height = 500;
};

enum class Legend { TopRight, TopLeft, BottomRight, BottomLeft, None };

struct Axes {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::optional<Range> x_range;  // nullopt: from the data
  std::optional<Range> y_range;
  bool x_integer = false;  // x ticks on whole numbers only (epochs, counts)
};

struct LineSeries {
  std::string label;  // "" keeps the series out of the legend
  std::vector<double> x;
  std::vector<double> y;  // same length as x
  std::optional<Color> color;  // nullopt: palette(index)
  bool dashed = false;
  bool markers = false;  // a dot at every point
  double line_width = 2;
};

struct LineChart : Axes {
  std::vector<LineSeries> series;
  Legend legend = Legend::TopRight;
};

// One bar per category, labelled under the axis.
struct BarChart : Axes {
  std::vector<std::string> categories;
  std::vector<double> values;  // one per category
  std::optional<Color> color;
  bool value_labels = true;  // the value above each bar
};

// Counts of `values` in `bins` equal bins over `bin_range` (nullopt: min..max of the data).
// Values outside the range are not counted.
struct Histogram : Axes {
  std::vector<double> values;
  int bins = 20;
  std::optional<Range> bin_range;
  std::optional<Color> color;
};

// A grid of cells coloured by value (viridis) with a colour bar. Row 0 is drawn at the top
// when `rows_down` (image coordinates: y grows downwards), at the bottom otherwise.
struct Heatmap : Axes {
  int rows = 0, cols = 0;
  std::vector<double> values;  // rows * cols, row-major
  Range x_extent{0, 1};        // data coordinates the columns span
  Range y_extent{0, 1};        // data coordinates the rows span
  bool rows_down = true;
  std::string colorbar_label;
  std::optional<Range> value_range;  // nullopt: min..max of the values
};

struct ScatterSeries {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
  std::optional<Color> color;
  double radius = 2.5;  // pixels
};

struct ScatterPlot : Axes {
  std::vector<ScatterSeries> series;
  Legend legend = Legend::TopRight;
  bool y_down = false;  // image coordinates: y grows downwards
};

using Chart = std::variant<LineChart, BarChart, Histogram, Heatmap, ScatterPlot>;

enum class ImageFormat { Png, Svg };
// From a path's extension (.png or .svg, any case); throws ConfigError otherwise.
ImageFormat image_format_for(const std::string& path);

// The chart as the bytes of a PNG or SVG file.
std::string render_chart(const Chart& chart, ImageFormat format, Size size = {});
// Writes the chart, format from the extension. Throws ConfigError for another extension,
// DataError when the file cannot be written.
void save_chart(const Chart& chart, const std::string& path, Size size = {});

// Where a chart's data area lies in the picture and how data maps to pixels (for callers
// that annotate, and for tests that look for a series where it must be).
struct Frame {
  double left = 0, top = 0, right = 0, bottom = 0;  // data area, pixels
  Range x, y;                                      // axis ranges after widening to ticks
  bool y_down = false;
  double px(double x_value) const;
  double py(double y_value) const;
};
Frame chart_frame(const Chart& chart, Size size = {});

// Tick positions covering [lo, hi] with about `target` steps of 1, 2, 2.5 or 5 x 10^k; the
// first is <= lo and the last >= hi. lo == hi gives a range around the value.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// A tick value as text with as many decimals as the step needs ("0.25", "1000", "1e-05").
std::string format_tick(double value, double step);

}  // namespace chestlab::plot

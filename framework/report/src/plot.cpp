// Charts on cairo (see plot.h): layout, axes, series, legend; PNG and SVG surfaces.
#include "chestlab/report/plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include "chestlab/errors.h"

namespace chestlab::plot {

// ---- colours, ticks ----------------------------------------------------------------------

Color palette(std::size_t i) {
  static const std::array<Color, 10> kTableau = {{
      {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
      {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
      {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
  }};
  return kTableau[i % kTableau.size()];
}

Color viridis(double t) {
  // Nine samples of matplotlib's viridis, linearly interpolated.
  static const std::array<Color, 9> kStops = {{
      {0.267, 0.005, 0.329}, {0.279, 0.175, 0.483}, {0.230, 0.322, 0.546},
      {0.173, 0.449, 0.558}, {0.128, 0.567, 0.551}, {0.153, 0.683, 0.498},
      {0.361, 0.784, 0.388}, {0.667, 0.862, 0.196}, {0.993, 0.906, 0.144},
  }};
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * (kStops.size() - 1);
  const std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(t), kStops.size() - 2);
  const double f = t - static_cast<double>(i);
  const Color& a = kStops[i];
  const Color& b = kStops[i + 1];
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f, 1};
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= std::abs(hi) * 1e-12) {
    const double d = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  target = std::max(target, 1);
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double factor = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  const double step = mag * factor;
  const double first = std::floor(lo / step + 1e-9);
  const double last = std::ceil(hi / step - 1e-9);
  // k * factor / 10^-e rounds to the nearest double of the decimal (3 * 0.2 would not).
  const double inverse = mag < 1 ? std::round(1 / mag) : 0;
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; k += 1) {
    const double v = inverse > 0 ? k * factor / inverse : k * step;
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  if (std::abs(value) < std::abs(step) * 1e-9) return "0";
  step = std::abs(step);
  if (step == 0 || !std::isfinite(step)) return fmt::format("{:g}", value);
  if (std::abs(value) >= 1e7 || step < 1e-5) return fmt::format("{:g}", value);
  int decimals = 0;
  for (; decimals < 6; ++decimals) {
    const double scaled = step * std::pow(10.0, decimals);
    if (std::abs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) break;
  }
  return fmt::format("{:.{}f}", value, decimals);
}

double Frame::px(double x_value) const {
  const double span = x.max - x.min;
  return left + (span == 0 ? 0.5 : (x_value - x.min) / span) * (right - left);
}

double Frame::py(double y_value) const {
  const double span = y.max - y.min;
  const double t = span == 0 ? 0.5 : (y_value - y.min) / span;
  return y_down ? top + t * (bottom - top) : bottom - t * (bottom - top);
}

ImageFormat image_format_for(const std::string& path) {
  std::string ext;
  const auto dot = path.find_last_of('.');
  if (dot != std::string::npos && path.find_first_of("/\\", dot) == std::string::npos) ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "png") return ImageFormat::Png;
  if (ext == "svg") return ImageFormat::Svg;
  throw ConfigError(fmt::format("{}: unknown image format \"{}\": use .png or .svg", path, ext));
}

namespace {

// ---- text --------------------------------------------------------------------------------

enum class HAlign { Left, Center, Right };
enum class VAlign { Top, Middle, Bottom };

constexpr double kTitleSize = 16;
constexpr double kLabelSize = 13;
constexpr double kTickSize = 11;

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s, double size, bool bold = false) {
  set_font(cr, size, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Draws `s` anchored at (x, y), rotated by `angle` radians around the anchor.
void draw_text(cairo_t* cr, const std::string& s, double x, double y, double size, HAlign h, VAlign v,
               bool bold = false, double angle = 0, Color color = {0.1, 0.1, 0.1, 1}) {
  if (s.empty()) return;
  set_font(cr, size, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const double dx = h == HAlign::Left ? 0 : h == HAlign::Center ? -e.x_advance / 2 : -e.x_advance;
  const double ascent = size * 0.75;  // cap height-ish: centres digits and capitals
  const double dy = v == VAlign::Top ? ascent : v == VAlign::Middle ? ascent / 2 : -fe.descent * 0.3;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, dx, dy);
  cairo_set_source_rgba(cr, color.r, color.g, color.b, color.a);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

void set_color(cairo_t* cr, const Color& c) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a); }

// ---- layout ------------------------------------------------------------------------------

struct HistogramBins {
  Range range;
  std::vector<double> counts;
};

HistogramBins bin_values(const Histogram& h) {
  HistogramBins out;
  const int bins = std::max(1, h.bins);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : h.values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (h.bin_range) lo = h.bin_range->min, hi = h.bin_range->max;
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi <= lo) hi = lo + 1;
  out.range = {lo, hi};
  out.counts.assign(bins, 0);
  const double width = (hi - lo) / bins;
  for (double v : h.values) {
    if (!std::isfinite(v) || v < lo || v > hi) continue;
    const int b = std::min(bins - 1, static_cast<int>((v - lo) / width));
    out.counts[b] += 1;
  }
  return out;
}

struct Extent {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

struct Layout {
  Frame frame;
  std::vector<double> x_ticks, y_ticks;
  double x_step = 1, y_step = 1;
  bool categorical = false;     // bar chart: x ticks are categories
  bool rotate_categories = false;
  Range value_range;            // heatmap colour scale
  std::vector<double> value_ticks;
  double value_step = 1;
  HistogramBins bins;           // histogram only
};

// Ticks for one axis: widened to the enclosing ticks unless the range is fixed.
// `pad`: a line or point at the data's edge stays off the frame (before widening to ticks).
void axis_ticks(Extent data, const std::optional<Range>& fixed, bool widen, Range& range,
                std::vector<double>& ticks, double& step, bool integer = false, bool pad = false) {
  if (fixed) {
    data.lo = fixed->min;
    data.hi = fixed->max;
    widen = false;
  }
  if (data.empty()) data.lo = 0, data.hi = 1;
  if (pad && widen && data.hi > data.lo) {
    const double margin = (data.hi - data.lo) * 0.03;
    data.lo -= margin;
    data.hi += margin;
  }
  ticks = nice_ticks(data.lo, data.hi);
  step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  if (integer && step < 1) {
    step = 1;
    ticks.clear();
    for (double t = std::floor(data.lo); t <= std::ceil(data.hi) + 0.5; t += 1) ticks.push_back(t);
    if (ticks.size() < 2) ticks.push_back(ticks.back() + 1);
  }
  if (widen) {
    range = {ticks.front(), ticks.back()};
  } else {
    range = {data.lo, data.hi};
    if (range.max <= range.min) range = {ticks.front(), ticks.back()};
    const double eps = step * 1e-6;
    ticks.erase(std::remove_if(ticks.begin(), ticks.end(),
                               [&](double t) { return t < range.min - eps || t > range.max + eps; }),
                ticks.end());
  }
}

const Axes& axes_of(const Chart& chart) {
  return std::visit([](const auto& c) -> const Axes& { return c; }, chart);
}

Layout compute_layout(cairo_t* cr, const Chart& chart, Size size) {
  Layout L;
  const Axes& axes = axes_of(chart);
  Extent xs, ys;
  bool widen_x = true, widen_y = true;
  const bool pad = std::holds_alternative<LineChart>(chart) || std::holds_alternative<ScatterPlot>(chart);
  auto add_points = [&](const auto& series) {  // points with both coordinates finite
    for (const auto& s : series) {
      const std::size_t n = std::min(s.x.size(), s.y.size());
      for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) xs.add(s.x[i]), ys.add(s.y[i]);
    }
  };
  if (auto* c = std::get_if<LineChart>(&chart)) {
    add_points(c->series);
  } else if (auto* c = std::get_if<ScatterPlot>(&chart)) {
    add_points(c->series);
    L.frame.y_down = c->y_down;
  } else if (auto* c = std::get_if<BarChart>(&chart)) {
    L.categorical = true;
    ys.add(0);
    for (double v : c->values) ys.add(c->value_labels ? v * 1.08 : v);  // room for the labels
  } else if (auto* c = std::get_if<Histogram>(&chart)) {
    L.bins = bin_values(*c);
    xs.add(L.bins.range.min);
    xs.add(L.bins.range.max);
    ys.add(0);
    for (double v : L.bins.counts) ys.add(v);
    widen_x = false;
  } else if (auto* c = std::get_if<Heatmap>(&chart)) {
    xs.add(c->x_extent.min);
    xs.add(c->x_extent.max);
    ys.add(c->y_extent.min);
    ys.add(c->y_extent.max);
    widen_x = widen_y = false;
    L.frame.y_down = c->rows_down;
    Extent vs;
    for (double v : c->values) vs.add(v);
    axis_ticks(vs, c->value_range, false, L.value_range, L.value_ticks, L.value_step);
  }
  if (L.categorical) {
    const auto& bar = std::get<BarChart>(chart);
    const double n = static_cast<double>(std::max<std::size_t>(1, bar.categories.size()));
    L.frame.x = {-0.5, n - 0.5};
  } else {
    axis_ticks(xs, axes.x_range, widen_x, L.frame.x, L.x_ticks, L.x_step, axes.x_integer);
  }
  axis_ticks(ys, axes.y_range, widen_y, L.frame.y, L.y_ticks, L.y_step, false, pad);
  // A histogram's count axis starts at 0 and its top tick clears the highest bar.
  if (L.y_ticks.empty()) L.y_ticks = {L.frame.y.min};

  double y_tick_width = 0;
  for (double t : L.y_ticks) y_tick_width = std::max(y_tick_width, text_width(cr, format_tick(t, L.y_step), kTickSize));
  double left = 10 + y_tick_width + 8 + (axes.y_label.empty() ? 0 : kLabelSize + 10);
  double right = 20;
  double top = axes.title.empty() ? 15 : 15 + kTitleSize + 12;
  double bottom = 10 + kTickSize + 8 + (axes.x_label.empty() ? 0 : kLabelSize + 10);
  if (std::holds_alternative<Heatmap>(chart)) {
    const auto& h = std::get<Heatmap>(chart);
    double w = 0;
    for (double t : L.value_ticks) w = std::max(w, text_width(cr, format_tick(t, L.value_step), kTickSize));
    right = 15 + 16 + 6 + w + 10 + (h.colorbar_label.empty() ? 0 : kLabelSize + 8);
  }
  if (L.categorical) {
    const auto& bar = std::get<BarChart>(chart);
    const double slot = (size.width - left - right) / std::max<std::size_t>(1, bar.categories.size());
    double widest = 0;
    for (const auto& c : bar.categories) widest = std::max(widest, text_width(cr, c, kTickSize));
    if (widest > slot - 4) {
      L.rotate_categories = true;
      bottom += std::min(widest * 0.71, size.height * 0.3);
    }
  }
  L.frame.left = left;
  L.frame.right = std::max(left + 10, size.width - right);
  L.frame.top = top;
  L.frame.bottom = std::max(top + 10, size.height - bottom);
  return L;
}

// ---- drawing -----------------------------------------------------------------------------

void draw_axes(cairo_t* cr, const Axes& axes, const Layout& L, const Chart& chart, Size size) {
  const Frame& f = L.frame;
  // Grid.
  cairo_set_line_width(cr, 1);
  cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
  for (double t : L.y_ticks) {
    const double y = std::round(f.py(t)) + 0.5;
    cairo_move_to(cr, f.left, y);
    cairo_line_to(cr, f.right, y);
  }
  if (!L.categorical)
    for (double t : L.x_ticks) {
      const double x = std::round(f.px(t)) + 0.5;
      cairo_move_to(cr, x, f.top);
      cairo_line_to(cr, x, f.bottom);
    }
  if (!std::holds_alternative<Heatmap>(chart)) cairo_stroke(cr);
  cairo_new_path(cr);
  // Frame and ticks.
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_rectangle(cr, std::round(f.left) + 0.5, std::round(f.top) + 0.5, std::round(f.right - f.left),
                  std::round(f.bottom - f.top));
  cairo_stroke(cr);
  for (double t : L.y_ticks) {
    const double y = f.py(t);
    cairo_move_to(cr, f.left - 5, std::round(y) + 0.5);
    cairo_line_to(cr, f.left, std::round(y) + 0.5);
    draw_text(cr, format_tick(t, L.y_step), f.left - 8, y, kTickSize, HAlign::Right, VAlign::Middle);
  }
  if (L.categorical) {
    const auto& bar = std::get<BarChart>(chart);
    for (std::size_t i = 0; i < bar.categories.size(); ++i) {
      const double x = f.px(static_cast<double>(i));
      if (L.rotate_categories)
        draw_text(cr, bar.categories[i], x, f.bottom + 8, kTickSize, HAlign::Right, VAlign::Middle, false,
                  -M_PI / 4);
      else
        draw_text(cr, bar.categories[i], x, f.bottom + 8, kTickSize, HAlign::Center, VAlign::Top);
    }
  } else {
    for (double t : L.x_ticks) {
      const double x = f.px(t);
      cairo_move_to(cr, std::round(x) + 0.5, f.bottom);
      cairo_line_to(cr, std::round(x) + 0.5, f.bottom + 5);
      draw_text(cr, format_tick(t, L.x_step), x, f.bottom + 8, kTickSize, HAlign::Center, VAlign::Top);
    }
  }
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_stroke(cr);
  // Labels and title.
  draw_text(cr, axes.title, (f.left + f.right) / 2, 15, kTitleSize, HAlign::Center, VAlign::Top, true);
  draw_text(cr, axes.x_label, (f.left + f.right) / 2, size.height - 10, kLabelSize, HAlign::Center,
            VAlign::Bottom);
  draw_text(cr, axes.y_label, 10, (f.top + f.bottom) / 2, kLabelSize, HAlign::Center, VAlign::Top, false,
            -M_PI / 2);
}

void clip_to_frame(cairo_t* cr, const Frame& f) {
  cairo_rectangle(cr, f.left, f.top, f.right - f.left, f.bottom - f.top);
  cairo_clip(cr);
}

struct LegendEntry {
  std::string label;
  Color color;
  bool dashed = false;
  bool dot = false;  // a marker instead of a line sample
};

void draw_legend(cairo_t* cr, const std::vector<LegendEntry>& entries, const Frame& f, Legend where) {
  if (where == Legend::None || entries.empty()) return;
  double widest = 0;
  for (const auto& e : entries) widest = std::max(widest, text_width(cr, e.label, kTickSize));
  const double row = kTickSize + 7, pad = 8, sample = 24;
  const double w = pad + sample + 6 + widest + pad;
  const double h = pad + row * entries.size() - 7 + pad;
  const bool right = where == Legend::TopRight || where == Legend::BottomRight;
  const bool top = where == Legend::TopRight || where == Legend::TopLeft;
  const double x = right ? f.right - 8 - w : f.left + 8;
  const double y = top ? f.top + 8 : f.bottom - 8 - h;
  cairo_rectangle(cr, x, y, w, h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const double cy = y + pad + row * i + kTickSize / 2;
    set_color(cr, e.color);
    if (e.dot) {
      cairo_arc(cr, x + pad + sample / 2, cy, 4, 0, 2 * M_PI);
      cairo_fill(cr);
    } else {
      const double dash[] = {6, 4};
      cairo_set_dash(cr, dash, e.dashed ? 2 : 0, 0);
      cairo_set_line_width(cr, 2);
      cairo_move_to(cr, x + pad, cy);
      cairo_line_to(cr, x + pad + sample, cy);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
    }
    draw_text(cr, e.label, x + pad + sample + 6, cy, kTickSize, HAlign::Left, VAlign::Middle);
  }
}

// Each series clipped to the data area in its colour (palette by index unless set), then the
// legend of the labelled ones. `draw_one(series, colour, n)` draws n = min(x, y) points.
template <class Series, class DrawOne>
void draw_series(cairo_t* cr, const std::vector<Series>& series, const Frame& f, Legend where, bool dots,
                 DrawOne draw_one) {
  std::vector<LegendEntry> legend;
  cairo_save(cr);
  clip_to_frame(cr, f);
  for (std::size_t si = 0; si < series.size(); ++si) {
    const Series& s = series[si];
    const Color color = s.color.value_or(palette(si));
    draw_one(s, color, std::min(s.x.size(), s.y.size()));
    if constexpr (std::is_same_v<Series, LineSeries>) {
      if (!s.label.empty()) legend.push_back({s.label, color, s.dashed, dots});
    } else {
      if (!s.label.empty()) legend.push_back({s.label, color, false, dots});
    }
  }
  cairo_restore(cr);
  draw_legend(cr, legend, f, where);
}

void draw_line_chart(cairo_t* cr, const LineChart& c, const Layout& L) {
  const Frame& f = L.frame;
  draw_series(cr, c.series, f, c.legend, false, [&](const LineSeries& s, const Color& color, std::size_t n) {
    bool pen_down = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        pen_down = false;
        continue;
      }
      if (pen_down)
        cairo_line_to(cr, f.px(s.x[i]), f.py(s.y[i]));
      else
        cairo_move_to(cr, f.px(s.x[i]), f.py(s.y[i]));
      pen_down = true;
    }
    const double dash[] = {7, 4};
    cairo_set_dash(cr, dash, s.dashed ? 2 : 0, 0);
    cairo_set_line_width(cr, s.line_width);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    set_color(cr, color);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    // A lone point (one epoch) is invisible as a line: give it a marker.
    if (s.markers || n == 1)
      for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        cairo_arc(cr, f.px(s.x[i]), f.py(s.y[i]), s.line_width + 1.5, 0, 2 * M_PI);
        cairo_fill(cr);
      }
  });
}

void draw_scatter(cairo_t* cr, const ScatterPlot& c, const Layout& L) {
  const Frame& f = L.frame;
  draw_series(cr, c.series, f, c.legend, true, [&](const ScatterSeries& s, const Color& color, std::size_t n) {
    set_color(cr, color);
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      cairo_new_sub_path(cr);
      cairo_arc(cr, f.px(s.x[i]), f.py(s.y[i]), s.radius, 0, 2 * M_PI);
    }
    cairo_fill(cr);
  });
}

void draw_bars(cairo_t* cr, const std::vector<double>& lefts, const std::vector<double>& rights,
               const std::vector<double>& values, const Frame& f, Color color) {
  cairo_save(cr);
  clip_to_frame(cr, f);
  const double base = f.py(std::clamp(0.0, f.y.min, f.y.max));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    const double x0 = f.px(lefts[i]), x1 = f.px(rights[i]);
    const double y = f.py(values[i]);
    cairo_rectangle(cr, x0, std::min(y, base), x1 - x0, std::abs(base - y));
  }
  set_color(cr, color);
  cairo_fill_preserve(cr);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_restore(cr);
}

void draw_bar_chart(cairo_t* cr, const BarChart& c, const Layout& L) {
  std::vector<double> lefts, rights;
  for (std::size_t i = 0; i < c.values.size(); ++i) {
    lefts.push_back(i - 0.4);
    rights.push_back(i + 0.4);
  }
  std::vector<double> values(c.values.begin(), c.values.begin() + std::min(c.values.size(), c.categories.size()));
  lefts.resize(values.size());
  rights.resize(values.size());
  draw_bars(cr, lefts, rights, values, L.frame, c.color.value_or(palette(0)));
  if (c.value_labels)
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) continue;
      const std::string text = values[i] == std::round(values[i]) && std::abs(values[i]) < 1e15
                                   ? fmt::format("{:.0f}", values[i])
                                   : fmt::format("{:.3g}", values[i]);
      draw_text(cr, text, L.frame.px(static_cast<double>(i)), L.frame.py(values[i]) - 4, kTickSize, HAlign::Center,
                VAlign::Bottom);
    }
}

void draw_histogram(cairo_t* cr, const Histogram& c, const Layout& L) {
  const auto& b = L.bins;
  const double width = (b.range.max - b.range.min) / b.counts.size();
  std::vector<double> lefts, rights;
  for (std::size_t i = 0; i < b.counts.size(); ++i) {
    lefts.push_back(b.range.min + i * width);
    rights.push_back(b.range.min + (i + 1) * width);
  }
  draw_bars(cr, lefts, rights, b.counts, L.frame, c.color.value_or(palette(0)));
}

void draw_heatmap(cairo_t* cr, const Heatmap& c, const Layout& L, Size size) {
  const Frame& f = L.frame;
  const double span = L.value_range.max - L.value_range.min;
  auto unit = [&](double v) { return span > 0 ? (v - L.value_range.min) / span : 0.5; };
  if (c.rows > 0 && c.cols > 0 && c.values.size() >= static_cast<std::size_t>(c.rows) * c.cols) {
    cairo_surface_t* cells = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, c.cols, c.rows);
    cairo_surface_flush(cells);
    unsigned char* data = cairo_image_surface_get_data(cells);
    const int stride = cairo_image_surface_get_stride(cells);
    for (int r = 0; r < c.rows; ++r) {
      auto* row = reinterpret_cast<std::uint32_t*>(data + r * stride);
      for (int col = 0; col < c.cols; ++col) {
        const double v = c.values[static_cast<std::size_t>(r) * c.cols + col];
        const Color k = std::isfinite(v) ? viridis(unit(v)) : Color{0.85, 0.85, 0.85};
        auto byte = [](double x) { return static_cast<std::uint32_t>(std::lround(std::clamp(x, 0.0, 1.0) * 255)); };
        row[col] = 0xff000000u | byte(k.r) << 16 | byte(k.g) << 8 | byte(k.b);
      }
    }
    cairo_surface_mark_dirty(cells);
    // Map cell (col, row) to the data rectangle of the extents.
    const double x0 = f.px(c.x_extent.min), x1 = f.px(c.x_extent.max);
    const double y0 = f.py(c.y_extent.min), y1 = f.py(c.y_extent.max);  // row 0 at y_extent.min
    cairo_save(cr);
    clip_to_frame(cr, f);
    cairo_translate(cr, x0, y0);
    cairo_scale(cr, (x1 - x0) / c.cols, (y1 - y0) / c.rows);
    cairo_set_source_surface(cr, cells, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(cr, 0, 0, c.cols, c.rows);
    cairo_fill(cr);
    cairo_restore(cr);
    cairo_surface_destroy(cells);
  }
  // Colour bar.
  const double bx = f.right + 15, bw = 16;
  cairo_pattern_t* grad = cairo_pattern_create_linear(0, f.bottom, 0, f.top);
  for (int i = 0; i <= 16; ++i) {
    const Color k = viridis(i / 16.0);
    cairo_pattern_add_color_stop_rgb(grad, i / 16.0, k.r, k.g, k.b);
  }
  cairo_rectangle(cr, bx, f.top, bw, f.bottom - f.top);
  cairo_set_source(cr, grad);
  cairo_fill(cr);
  cairo_pattern_destroy(grad);
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, bx + 0.5, std::round(f.top) + 0.5, bw, std::round(f.bottom - f.top));
  cairo_stroke(cr);
  double widest = 0;
  for (double t : L.value_ticks) {
    const double y = f.bottom - unit(t) * (f.bottom - f.top);
    cairo_move_to(cr, bx + bw, std::round(y) + 0.5);
    cairo_line_to(cr, bx + bw + 4, std::round(y) + 0.5);
    const std::string s = format_tick(t, L.value_step);
    widest = std::max(widest, text_width(cr, s, kTickSize));
    draw_text(cr, s, bx + bw + 6, y, kTickSize, HAlign::Left, VAlign::Middle);
  }
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_stroke(cr);
  draw_text(cr, c.colorbar_label, std::min<double>(size.width - 8, bx + bw + 6 + widest + 10), (f.top + f.bottom) / 2,
            kLabelSize, HAlign::Center, VAlign::Bottom, false, -M_PI / 2);
}

void draw_chart(cairo_t* cr, const Chart& chart, Size size) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const Layout L = compute_layout(cr, chart, size);
  draw_axes(cr, axes_of(chart), L, chart, size);
  if (auto* c = std::get_if<LineChart>(&chart)) draw_line_chart(cr, *c, L);
  if (auto* c = std::get_if<ScatterPlot>(&chart)) draw_scatter(cr, *c, L);
  if (auto* c = std::get_if<BarChart>(&chart)) draw_bar_chart(cr, *c, L);
  if (auto* c = std::get_if<Histogram>(&chart)) draw_histogram(cr, *c, L);
  if (auto* c = std::get_if<Heatmap>(&chart)) draw_heatmap(cr, *c, L, size);
}

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void check_size(Size size) {
  if (size.width < 50 || size.height < 50 || size.width > 20000 || size.height > 20000)
    throw std::invalid_argument(fmt::format("chart size {}x{}: each side must be 50..20000 pixels", size.width,
                                            size.height));
}

}  // namespace

Frame chart_frame(const Chart& chart, Size size) {
  check_size(size);
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t* cr = cairo_create(surface);
  Frame f = compute_layout(cr, chart, size).frame;
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  return f;
}

std::string render_chart(const Chart& chart, ImageFormat format, Size size) {
  check_size(size);
  std::string bytes;
  cairo_surface_t* surface = nullptr;
  if (format == ImageFormat::Png) {
    surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, size.width, size.height);
  } else {
    surface = cairo_svg_surface_create_for_stream(&append_bytes, &bytes, size.width, size.height);
    cairo_svg_surface_set_document_unit(surface, CAIRO_SVG_UNIT_PX);
  }
  cairo_t* cr = cairo_create(surface);
  draw_chart(cr, chart, size);
  cairo_status_t status = cairo_status(cr);
  cairo_destroy(cr);
  if (status == CAIRO_STATUS_SUCCESS && format == ImageFormat::Png)
    status = cairo_surface_write_to_png_stream(surface, &append_bytes, &bytes);
  cairo_surface_finish(surface);  // the SVG surface writes its document here
  if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cairo could not draw the chart: ") + cairo_status_to_string(status));
  return bytes;
}

void save_chart(const Chart& chart, const std::string& path, Size size) {
  const std::string bytes = render_chart(chart, image_format_for(path), size);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw DataError(path, "cannot write the chart");
}

}  // namespace chestlab::plot

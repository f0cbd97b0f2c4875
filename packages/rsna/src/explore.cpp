// RSNA label statistics and their figures (see rsna/explore.h).
#include "chestlab/rsna/explore.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <opencv2/core.hpp>

#include "chestlab/errors.h"
#include "chestlab/report/plot.h"

namespace fs = std::filesystem;

namespace chestlab {

NumberSummary summarize_numbers(std::vector<double> values) {
  NumberSummary s;
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
               values.end());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.n = values.size();
  s.min = values.front();
  s.max = values.back();
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  const std::size_t mid = values.size() / 2;
  s.median = values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  return s;
}

namespace {

constexpr const char* kMissing = "(missing)";

const std::string* meta_value(const RsnaPatient& p, const char* key) {
  auto it = p.meta.find(key);
  return it == p.meta.end() || it->second.empty() ? nullptr : &it->second;
}

// Counts by a metadata field: values sorted by patients (descending), "(missing)" last.
std::vector<RsnaCountRow> count_by(const std::vector<RsnaPatient>& patients, const char* key) {
  std::map<std::string, RsnaCountRow> rows;
  for (const auto& p : patients) {
    const std::string* v = meta_value(p, key);
    RsnaCountRow& row = rows[v ? *v : kMissing];
    row.key = v ? *v : kMissing;
    ++row.patients;
    row.positive += p.target == 1;
  }
  std::vector<RsnaCountRow> out;
  for (auto& [key, row] : rows) out.push_back(row);
  std::stable_sort(out.begin(), out.end(), [](const RsnaCountRow& a, const RsnaCountRow& b) {
    const bool am = a.key == kMissing, bm = b.key == kMissing;
    if (am != bm) return bm;
    return a.patients > b.patients;
  });
  return out;
}

enum class AgeKind { Missing, Implausible, Plausible };

// PatientAge in years: missing or unreadable, over 120 (typos in the table), or plausible.
AgeKind patient_age(const RsnaPatient& p, double& years) {
  const std::string* age = meta_value(p, rsna_meta::kAge);
  if (!age) return AgeKind::Missing;
  char* end = nullptr;
  years = std::strtod(age->c_str(), &end);
  if (end == age->c_str() || *end != '\0' || !std::isfinite(years) || years < 0) return AgeKind::Missing;
  return years > 120 ? AgeKind::Implausible : AgeKind::Plausible;
}

void kmeans_sizes(const std::vector<RsnaPatient>& patients, const RsnaExploreOptions& options,
                  RsnaExploreStats& stats) {
  std::vector<cv::Point2f> sizes;
  for (const auto& p : patients)
    for (const auto& b : p.boxes) sizes.emplace_back(static_cast<float>(b.w), static_cast<float>(b.h));
  const int k = std::min<int>(std::max(1, options.kmeans_k), static_cast<int>(sizes.size()));
  if (k == 0) return;
  cv::Mat data(static_cast<int>(sizes.size()), 2, CV_32F, sizes.data());
  cv::Mat labels, centers;
  cv::theRNG() = cv::RNG(options.seed);  // k-means++ draws from OpenCV's thread RNG
  cv::kmeans(data, k, labels, cv::TermCriteria(cv::TermCriteria::EPS + cv::TermCriteria::COUNT, 100, 1e-3), 3,
             cv::KMEANS_PP_CENTERS, centers);
  std::vector<int> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const double aa = centers.at<float>(a, 0) * centers.at<float>(a, 1);
    const double bb = centers.at<float>(b, 0) * centers.at<float>(b, 1);
    return aa < bb || (aa == bb && a < b);
  });
  std::vector<int> rank(k);
  for (int i = 0; i < k; ++i) rank[order[i]] = i;
  stats.clusters.assign(k, {});
  for (int i = 0; i < k; ++i) {
    stats.clusters[i].width = centers.at<float>(order[i], 0);
    stats.clusters[i].height = centers.at<float>(order[i], 1);
  }
  stats.cluster_of_box.resize(sizes.size());
  for (int i = 0; i < labels.rows; ++i) {
    const int c = rank[labels.at<int>(i)];
    stats.cluster_of_box[i] = c;
    ++stats.clusters[c].boxes;
  }
}

std::string percent(std::size_t part, std::size_t whole) {
  return whole ? fmt::format("{:.2f} %", 100.0 * part / whole) : "-";
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

void count_table(std::string& md, const std::string& what, const std::vector<RsnaCountRow>& rows,
                 std::size_t patients) {
  md += fmt::format("| {} | patients | share | positive | positive rate |\n|---|---:|---:|---:|---:|\n", what);
  for (const auto& r : rows)
    md += fmt::format("| {} | {} | {} | {} | {} |\n", r.key, r.patients, percent(r.patients, patients), r.positive,
                      percent(r.positive, r.patients));
  md += "\n";
}

void summary_row(std::string& md, const std::string& what, const NumberSummary& s) {
  md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", what, s.n, num(s.min), num(s.median), num(s.mean), num(s.max));
}

std::string figure_link(const std::vector<std::string>& figures, const std::string& stem, const std::string& alt) {
  for (const auto& f : figures)
    if (fs::path(f).stem() == stem) return fmt::format("![{}]({})\n\n", alt, f);
  return "";
}

}  // namespace

RsnaExploreStats explore_rsna(const std::vector<RsnaPatient>& patients, const RsnaExploreOptions& options) {
  RsnaExploreStats s;
  s.patients = patients.size();
  std::vector<double> widths, heights, areas, ages;
  std::vector<std::size_t> class_counts(3, 0), class_positive(3, 0);
  std::size_t unknown = 0;
  for (const auto& p : patients) {
    s.positive += p.target == 1;
    s.boxes += p.boxes.size();
    if (s.boxes_per_image.size() <= p.boxes.size()) s.boxes_per_image.resize(p.boxes.size() + 1, 0);
    ++s.boxes_per_image[p.boxes.size()];
    for (const auto& b : p.boxes) {
      widths.push_back(b.w);
      heights.push_back(b.h);
      areas.push_back(b.area());
    }
    if (p.class_index >= 0 && p.class_index < 3) {
      ++class_counts[p.class_index];
      class_positive[p.class_index] += p.target == 1;
    } else {
      ++unknown;
    }
    if (!p.meta.empty()) s.has_metadata = true;
    double years = 0;
    switch (patient_age(p, years)) {
      case AgeKind::Missing: ++s.age_missing; break;
      case AgeKind::Implausible: ++s.age_implausible; break;
      case AgeKind::Plausible: ages.push_back(years); break;
    }
  }
  for (int c = 0; c < 3; ++c) s.classes.push_back({rsna_class_names()[c], class_counts[c], class_positive[c]});
  if (unknown) s.classes.push_back({"unknown (no class table, Target 0)", unknown, 0});
  s.width = summarize_numbers(widths);
  s.height = summarize_numbers(heights);
  s.area = summarize_numbers(areas);
  if (s.has_metadata) {
    s.age = summarize_numbers(ages);
    s.sex = count_by(patients, rsna_meta::kSex);
    s.view = count_by(patients, rsna_meta::kViewPosition);
  }
  kmeans_sizes(patients, options, s);
  return s;
}

std::string rsna_explore_markdown(const RsnaExploreStats& s, const RsnaExploreOptions& options,
                                  const std::vector<std::string>& figures) {
  std::string md = fmt::format("# {}\n\n", options.title);
  md += "| quantity | value |\n|---|---:|\n";
  md += fmt::format("| patients | {} |\n", s.patients);
  md += fmt::format("| positive (Target 1) | {} |\n", s.positive);
  md += fmt::format("| negative (Target 0) | {} |\n", s.patients - s.positive);
  md += fmt::format("| positive fraction | {} |\n", percent(s.positive, s.patients));
  md += fmt::format("| boxes | {} |\n", s.boxes);
  md += fmt::format("| boxes per positive patient | {} |\n",
                    s.positive ? fmt::format("{:.3f}", static_cast<double>(s.boxes) / s.positive) : "-");
  md += "\n## Boxes per image\n\n| boxes | patients | share |\n|---:|---:|---:|\n";
  for (std::size_t n = 0; n < s.boxes_per_image.size(); ++n)
    md += fmt::format("| {} | {} | {} |\n", n, s.boxes_per_image[n], percent(s.boxes_per_image[n], s.patients));
  md += "\n" + figure_link(figures, "boxes_per_image", "boxes per image");
  md += "## Classes\n\n";
  count_table(md, "class", s.classes, s.patients);
  md += figure_link(figures, "class_balance", "class balance");
  md += fmt::format("## Box sizes (pixels of the {0:g} x {0:g} image)\n\n", options.image_side);
  md += "| | boxes | min | median | mean | max |\n|---|---:|---:|---:|---:|---:|\n";
  summary_row(md, "width", s.width);
  summary_row(md, "height", s.height);
  summary_row(md, "area", s.area);
  md += "\n" + figure_link(figures, "box_width", "box widths") + figure_link(figures, "box_height", "box heights");
  md += figure_link(figures, "box_heatmap", "where boxes lie");
  md += fmt::format("## k-means of box sizes (k = {}, seed {})\n\n", s.clusters.size(), options.seed);
  md += "| cluster | width | height | boxes | share |\n|---:|---:|---:|---:|---:|\n";
  for (std::size_t c = 0; c < s.clusters.size(); ++c)
    md += fmt::format("| {} | {} | {} | {} | {} |\n", c, num(s.clusters[c].width), num(s.clusters[c].height),
                      s.clusters[c].boxes, percent(s.clusters[c].boxes, s.boxes));
  md += "\n" + figure_link(figures, "box_size_kmeans", "k-means of box sizes");
  if (!s.has_metadata) {
    md += "## Metadata\n\nNo DICOM header table was given (dataset.headers), so no age, sex or view position.\n";
    return md;
  }
  md += "## Age (years)\n\n| | patients | min | median | mean | max |\n|---|---:|---:|---:|---:|---:|\n";
  summary_row(md, "age", s.age);
  md += fmt::format("\nMissing or unreadable: {}; implausible (over 120, left out): {}.\n\n", s.age_missing,
                    s.age_implausible);
  md += figure_link(figures, "age", "age");
  md += "## Sex\n\n";
  count_table(md, "sex", s.sex, s.patients);
  md += figure_link(figures, "sex", "sex");
  md += "## View position\n\n";
  count_table(md, "view", s.view, s.patients);
  md += figure_link(figures, "view_position", "view position");
  return md;
}

std::vector<std::string> write_rsna_explore(const std::vector<RsnaPatient>& patients, const RsnaExploreStats& s,
                                            const std::string& dir, const RsnaExploreOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(dir, "cannot create the folder: " + ec.message());
  const std::string ext = options.svg ? ".svg" : ".png";
  std::vector<std::string> written;
  auto save = [&](const plot::Chart& chart, const std::string& stem, plot::Size size = {800, 500}) {
    plot::save_chart(chart, (fs::path(dir) / (stem + ext)).string(), size);
    written.push_back(stem + ext);
  };
  auto count_chart = [&](const std::string& title, const std::string& x_label,
                         const std::vector<RsnaCountRow>& rows, const std::string& stem) {
    plot::BarChart bars;
    bars.title = title;
    bars.x_label = x_label;
    bars.y_label = "patients";
    for (const auto& r : rows) {
      bars.categories.push_back(r.key);
      bars.values.push_back(static_cast<double>(r.patients));
    }
    save(bars, stem);
  };

  plot::BarChart per_image;
  per_image.title = "Boxes per image";
  per_image.x_label = "boxes";
  per_image.y_label = "patients";
  for (std::size_t n = 0; n < s.boxes_per_image.size(); ++n) {
    per_image.categories.push_back(std::to_string(n));
    per_image.values.push_back(static_cast<double>(s.boxes_per_image[n]));
  }
  save(per_image, "boxes_per_image");
  count_chart("Class balance", "class", s.classes, "class_balance");

  std::vector<double> widths, heights;
  for (const auto& p : patients)
    for (const auto& b : p.boxes) widths.push_back(b.w), heights.push_back(b.h);
  plot::Histogram wh;
  wh.title = "Box width";
  wh.x_label = "width (pixels)";
  wh.y_label = "boxes";
  wh.values = widths;
  wh.bins = 40;
  save(wh, "box_width");
  wh.title = "Box height";
  wh.x_label = "height (pixels)";
  wh.values = heights;
  wh.color = plot::palette(1);
  save(wh, "box_height");

  // How many boxes cover each cell of a grid over the image.
  const int g = std::max(1, options.grid);
  plot::Heatmap heat;
  heat.title = "Where boxes lie (boxes covering each cell)";
  heat.x_label = "x (pixels)";
  heat.y_label = "y (pixels)";
  heat.rows = heat.cols = g;
  heat.values.assign(static_cast<std::size_t>(g) * g, 0.0);
  heat.x_extent = heat.y_extent = {0, options.image_side};
  heat.rows_down = true;
  heat.colorbar_label = "boxes";
  const double cell = options.image_side / g;
  for (const auto& p : patients)
    for (const auto& b : p.boxes) {
      const int c0 = std::clamp(static_cast<int>(std::floor(b.x / cell)), 0, g - 1);
      const int c1 = std::clamp(static_cast<int>(std::ceil(b.right() / cell)) - 1, 0, g - 1);
      const int r0 = std::clamp(static_cast<int>(std::floor(b.y / cell)), 0, g - 1);
      const int r1 = std::clamp(static_cast<int>(std::ceil(b.bottom() / cell)) - 1, 0, g - 1);
      for (int r = r0; r <= r1; ++r)
        for (int c = c0; c <= c1; ++c) heat.values[static_cast<std::size_t>(r) * g + c] += 1;
    }
  save(heat, "box_heatmap", {700, 600});

  plot::ScatterPlot km;
  km.title = fmt::format("Box sizes, k-means (k = {})", s.clusters.size());
  km.x_label = "width (pixels)";
  km.y_label = "height (pixels)";
  km.series.resize(s.clusters.size());
  for (std::size_t c = 0; c < s.clusters.size(); ++c) {
    km.series[c].label = fmt::format("cluster {} ({} boxes)", c, s.clusters[c].boxes);
    km.series[c].radius = 1.5;
    km.series[c].color = plot::Color{plot::palette(c).r, plot::palette(c).g, plot::palette(c).b, 0.5};
  }
  for (std::size_t i = 0; i < widths.size() && i < s.cluster_of_box.size(); ++i) {
    km.series[s.cluster_of_box[i]].x.push_back(widths[i]);
    km.series[s.cluster_of_box[i]].y.push_back(heights[i]);
  }
  plot::ScatterSeries centres;
  centres.label = "centres";
  centres.color = plot::Color{0, 0, 0};
  centres.radius = 5;
  for (const auto& c : s.clusters) centres.x.push_back(c.width), centres.y.push_back(c.height);
  km.series.push_back(centres);
  save(km, "box_size_kmeans", {700, 600});

  if (s.has_metadata) {
    std::vector<double> ages;
    for (const auto& p : patients) {
      double years = 0;
      if (patient_age(p, years) == AgeKind::Plausible) ages.push_back(years);
    }
    plot::Histogram age;
    age.title = "Age";
    age.x_label = "age (years)";
    age.y_label = "patients";
    age.values = ages;
    age.bins = 24;
    age.bin_range = plot::Range{0, 120};
    save(age, "age");
    count_chart("Sex", "PatientSex", s.sex, "sex");
    count_chart("View position", "ViewPosition", s.view, "view_position");
  }

  const std::string md_path = (fs::path(dir) / "summary.md").string();
  std::ofstream md(md_path, std::ios::trunc);
  md << rsna_explore_markdown(s, options, written);
  md.close();
  if (!md) throw DataError(md_path, "cannot write the summary");
  written.push_back("summary.md");
  return written;
}

}  // namespace chestlab

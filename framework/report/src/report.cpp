// The self-contained HTML report over run files (see report.h).
#include "chestlab/report/report.h"

#include <fmt/format.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "chestlab/engine/compare.h"
#include "chestlab/report/curves.h"
#include "chestlab/errors.h"
#include "chestlab/report/live.h"
#include "chestlab/report/plot.h"

namespace fs = std::filesystem;

namespace chestlab {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < bytes.size() ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<RunInfo> collect_runs(const std::string& dir, std::vector<std::string>& skipped) {
  std::vector<RunInfo> runs;
  for (const FileStamp& file : scan_folder(dir).run_files) {
    try {
      runs.push_back(read_run(file.path, LoadWeights::No));
    } catch (const DataError& e) {
      skipped.push_back(e.what());
    }
  }
  return runs;
}

bool any_running(const std::vector<RunInfo>& runs, const ReportOptions& options) {
  if (options.sweep_running) return true;
  return std::any_of(runs.begin(), runs.end(), [&](const RunInfo& r) {
    return r.status == RunStatus::Running && !options.abandoned.count(r.path);
  });
}

bool page_is_live(const std::vector<RunInfo>& runs, const ReportOptions& options) {
  return options.live_refresh_seconds > 0 && any_running(runs, options);
}

namespace {

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1320px;
       color: #1a1a1a; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #1f77b4; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-bottom: 0.4em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; }
th { background: #eef3f8; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.summary td { font-weight: bold; background: #f7f7f7; }
.status-complete, .status-stopped_early { color: #2a7f2a; }
.status-failed, .status-interrupted { color: #b22222; }
.status-running, .status-pending { color: #8a6d00; }
.curves { display: flex; flex-wrap: wrap; gap: 12px; }
.curves img { width: 600px; max-width: 100%; height: auto; border: 1px solid #ddd; }
.note { background: #fff8e1; border: 1px solid #f0d98c; padding: 8px 12px; }
.live { color: #8a6d00; font-weight: bold; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 0.85em; }
nav ul { columns: 2; }
)";

std::string number(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }

std::string status_span(const std::string& status) {
  return fmt::format("<span class=\"status-{0}\">{0}</span>", html_escape(status));
}

// A run's status; "running" with a note when no process is writing it.
std::string run_status_html(const RunInfo& run, const ReportOptions& options) {
  std::string out = status_span(to_string(run.status));
  if (run.status == RunStatus::Running && options.abandoned.count(run.path))
    out += " <small>(but no process is writing it: stopped without saying so, e.g. killed; "
           "<code>chestlab run --resume</code> continues it)</small>";
  return out;
}

std::string anchor(std::size_t i) { return fmt::format("run-{}", i); }

// A fold's value at its best epoch; '*' marks a fold that has not finished (as compare does).
std::string cell_html(const CompareCell& cell) {
  if (!cell.exists) return "-";
  if (!cell.value) return is_finished(cell.status) ? "-" : html_escape(to_string(cell.status));
  return number(*cell.value) + (is_finished(cell.status) ? "" : "*");
}

std::string mean_html(const CompareRow& row) {
  return row.n_folds > 0 ? fmt::format("{} ± {} <small>(n={})</small>", number(row.mean), number(row.std), row.n_folds)
                         : "-";
}

// Every metric over every run: the `chestlab compare` table.
std::string overview_html(const std::vector<RunInfo>& runs) {
  const CompareTable table = build_compare_table(runs, std::nullopt);
  std::map<std::string, std::size_t> index_of;  // row name -> the run's section
  for (std::size_t i = 0; i < runs.size(); ++i)
    index_of.emplace(runs[i].meta.experiment + "/" + runs[i].meta.run_id, i);
  std::string out;
  for (const CompareBlock& block : table.blocks) {
    out += fmt::format("<h3>{}</h3>\n<table class=\"compare\">\n<tr><th>run</th><th>status</th>", html_escape(block.metric));
    for (int k = 0; k < table.fold_columns; ++k) out += fmt::format("<th>fold {}</th>", k);
    out += "<th>mean ± std</th>";
    if (table.has_test) out += "<th>test</th>";
    out += "</tr>\n";
    for (const CompareRow& row : block.rows) {
      const auto it = index_of.find(row.run);
      out += fmt::format("<tr><td>{}</td><td>{}</td>",
                         it == index_of.end() ? html_escape(row.run)
                                              : fmt::format("<a href=\"#{}\">{}</a>", anchor(it->second), html_escape(row.run)),
                         status_span(to_string(row.status)));
      for (const CompareCell& cell : row.folds) out += fmt::format("<td class=\"num\">{}</td>", cell_html(cell));
      out += fmt::format("<td class=\"num\">{}</td>", mean_html(row));
      if (table.has_test) out += fmt::format("<td class=\"num\">{}</td>", row.test ? number(*row.test) : "-");
      out += "</tr>\n";
    }
    out += "</table>\n";
  }
  return out;
}

// A TOML value as a reader wants it: strings unquoted, floats shortest (0.6, not 0.59999...).
std::string value_text(const toml::node& node) {
  if (auto v = node.as_string()) return v->get();
  if (auto v = node.as_floating_point()) return fmt::format("{}", v->get());
  if (auto v = node.as_integer()) return std::to_string(v->get());
  if (auto v = node.as_boolean()) return v->get() ? "true" : "false";
  if (auto a = node.as_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + value_text(*a->get(i));
    return out + "]";
  }
  std::ostringstream ss;
  node.visit([&](auto&& n) { ss << n; });
  return ss.str();
}

// The resolved experiment file, section by section: its scalar settings on one line.
std::string config_summary_html(const RunInfo& run) {
  if (run.config_toml.empty()) return "<p>No configuration recorded.</p>\n";
  toml::table root;
  try {
    root = toml::parse(std::string_view(run.config_toml), std::string_view(run.path));
  } catch (const toml::parse_error& e) {
    return fmt::format("<p class=\"note\">The recorded configuration does not parse: {}</p>\n",
                       html_escape(std::string(e.description())));
  }
  auto scalar_text = [](const toml::node& node) -> std::optional<std::string> {
    if (node.is_table() || node.is_array_of_tables()) return std::nullopt;
    std::string text = value_text(node);
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    return text;
  };
  auto settings = [&](const toml::table& table) {
    std::string line;
    for (const auto& [key, node] : table) {
      auto text = scalar_text(node);
      if (!text) continue;
      if (!line.empty()) line += ", ";
      line += fmt::format("<b>{}</b> = {}", html_escape(std::string(key.str())), html_escape(*text));
    }
    return line;
  };
  std::string rows;
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (const toml::table* t = node.as_table()) {
      rows += fmt::format("<tr><th>[{}]</th><td>{}</td></tr>\n", html_escape(name), settings(*t));
      for (const auto& [sub_key, sub_node] : *t)
        if (const toml::array* a = sub_node.as_array(); a && a->is_array_of_tables())
          for (const auto& item : *a)
            rows += fmt::format("<tr><th>[[{}.{}]]</th><td>{}</td></tr>\n", html_escape(name),
                                html_escape(std::string(sub_key.str())), settings(*item.as_table()));
    } else if (const toml::array* a = node.as_array(); a && a->is_array_of_tables()) {
      for (const auto& item : *a)
        rows += fmt::format("<tr><th>[[{}]]</th><td>{}</td></tr>\n", html_escape(name), settings(*item.as_table()));
    }
  }
  return "<table class=\"config\">\n" + rows + "</table>\n<details><summary>resolved experiment file</summary><pre>" +
         html_escape(run.config_toml) + "</pre></details>\n";
}

// One row per fold: status, epochs run, best epoch, validation loss there, and each metric at
// the best epoch (from the compare table); then mean ± std over the finished folds.
std::string folds_html(const RunInfo& run) {
  if (run.folds.empty()) return "<p>No folds recorded yet.</p>\n";
  const CompareTable table = build_compare_table({run}, std::nullopt);
  std::string out = "<table class=\"folds\">\n<tr><th>fold</th><th>status</th><th>epochs</th><th>best epoch</th>"
                    "<th>val loss</th>";
  for (const CompareBlock& b : table.blocks)
    out += fmt::format("<th>{}{}</th>", html_escape(b.metric), b.metric == run.meta.monitor ? " (monitor)" : "");
  out += "</tr>\n";
  for (const FoldInfo& fold : run.folds) {
    const HistoryRow* best = fold.row_for_epoch(fold.best_epoch);
    out += fmt::format("<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                       "<td class=\"num\">{}</td>",
                       fold.index, status_span(to_string(fold.status)), fold.history.size(),
                       fold.best_epoch >= 0 ? std::to_string(fold.best_epoch) : "-",
                       best ? number(best->val_loss) : "-");
    for (const CompareBlock& b : table.blocks) {
      const auto& cells = b.rows.front().folds;
      out += fmt::format("<td class=\"num\">{}</td>",
                         static_cast<std::size_t>(fold.index) < cells.size() ? cell_html(cells[fold.index]) : "-");
    }
    out += "</tr>\n";
  }
  out += "<tr class=\"summary\"><td colspan=\"5\">mean ± std (finished folds)</td>";
  for (const CompareBlock& b : table.blocks) out += fmt::format("<td class=\"num\">{}</td>", mean_html(b.rows.front()));
  out += "</tr>\n</table>\n";
  for (const FoldInfo& fold : run.folds)
    if (!fold.error.empty())
      out += fmt::format("<p class=\"note\">fold {} failed: {}</p>\n", fold.index, html_escape(fold.error));
  return out;
}

std::string test_html(const RunInfo& run) {
  if (run.test.empty()) return "";
  std::string out = "<h3>Test set</h3>\n<table class=\"test\">\n<tr><th>metric</th><th>value</th></tr>\n";
  for (const MetricValue& t : run.test)
    out += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td></tr>\n", html_escape(t.metric), number(t.value));
  return out + "</table>\n";
}

std::string curves_html(const RunInfo& run, bool all_metrics) {
  bool any_history = false;
  for (const FoldInfo& f : run.folds) any_history = any_history || !f.history.empty();
  if (!any_history) return "<p>No epochs recorded yet.</p>\n";
  std::string out = "<div class=\"curves\">\n";
  for (const CurveChart& c : learning_curves(run, all_metrics)) {
    const std::string svg = plot::render_chart(c.chart, plot::ImageFormat::Svg, {800, 450});
    out += fmt::format("<img alt=\"{} curves of {}\" src=\"data:image/svg+xml;base64,{}\">\n", html_escape(c.name),
                       html_escape(run.meta.run_id), base64_encode(svg));
  }
  return out + "</div>\n";
}

// Per-image values (the metrics that offer them): a line of numbers per metric and part, a
// histogram of each metric's validation values over the finished folds, and the worst images.
// Nothing for a run without them.
std::string per_image_html(const RunInfo& run, const ReportOptions& options) {
  const std::vector<PerImageSummary> summaries = summarize_per_image(run, std::max(0, options.worst_images));
  if (summaries.empty()) return "";
  std::string out =
      "<h3>Per-image values (each fold's best epoch, finished folds)</h3>\n<table class=\"per-image\">\n"
      "<tr><th>metric</th><th>part</th><th>images</th><th>mean</th><th>median</th><th>min</th><th>max</th>"
      "<th>= 1</th><th>= 0</th></tr>\n";
  auto part_text = [](const PerImageSummary& s) {
    if (s.part == PerImagePart::Test) return std::string("test");
    std::string folds;
    for (int k : s.folds) folds += (folds.empty() ? "" : ", ") + std::to_string(k);
    return folds.empty() ? std::string("validation (no finished fold)") : "validation, folds " + folds;
  };
  for (const PerImageSummary& s : summaries) {
    const bool any = s.n > 0;
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
        html_escape(s.metric), html_escape(part_text(s)), s.n, any ? number(s.mean) : "-", any ? number(s.median) : "-",
        any ? number(s.min) : "-", any ? number(s.max) : "-",
        any ? fmt::format("{:.1f}%", 100 * s.share_one) : "-", any ? fmt::format("{:.1f}%", 100 * s.share_zero) : "-");
  }
  out += "</table>\n";
  for (const PerImageSummary& s : summaries) {
    std::string notes;
    if (!s.unfinished_folds.empty()) {
      std::string folds;
      for (int k : s.unfinished_folds) folds += (folds.empty() ? "" : ", ") + std::to_string(k);
      notes += fmt::format("{}: fold(s) {} not finished, left out. ", html_escape(s.metric), folds);
    }
    if (s.non_finite > 0)
      notes += fmt::format("{} ({}): {} value(s) not finite, left out. ", html_escape(s.metric),
                           to_string(s.part), s.non_finite);
    if (!notes.empty()) out += "<p class=\"sub\">" + notes + "</p>\n";
  }
  // Histograms of the validation values; [0, 1] when the values lie there (IoU, Dice).
  std::string charts;
  for (const PerImageSummary& s : summaries) {
    if (s.part != PerImagePart::Validation || s.n == 0) continue;
    plot::Histogram h;
    h.title = fmt::format("{} per image (validation, {} images)", s.metric, s.n);
    h.x_label = s.metric;
    h.y_label = "images";
    h.values = s.values;
    h.bins = 20;
    if (s.min >= 0 && s.max <= 1) h.bin_range = plot::Range{0, 1};
    const std::string svg = plot::render_chart(h, plot::ImageFormat::Svg, {800, 450});
    charts += fmt::format("<img class=\"per-image-histogram\" alt=\"{} per image of {}\" "
                          "src=\"data:image/svg+xml;base64,{}\">\n",
                          html_escape(s.metric), html_escape(run.meta.run_id), base64_encode(svg));
  }
  if (!charts.empty()) out += "<div class=\"curves\">\n" + charts + "</div>\n";
  for (const PerImageSummary& s : summaries) {
    if (s.worst.empty()) continue;
    out += fmt::format("<h4>Worst {} images by {} ({}; {} is better)</h4>\n<table class=\"worst\">\n"
                       "<tr><th>fold</th><th>id</th><th>{}</th></tr>\n",
                       s.worst.size(), html_escape(s.metric), to_string(s.part), s.maximize ? "higher" : "lower",
                       html_escape(s.metric));
    for (const PerImageValue& w : s.worst)
      out += fmt::format("<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
                         w.fold < 0 ? std::string("test") : std::to_string(w.fold), html_escape(w.id),
                         number(w.value));
    out += "</table>\n";
  }
  return out;
}

std::string run_html(const RunInfo& run, std::size_t index, const ReportOptions& options) {
  std::string out = fmt::format("<section id=\"{}\">\n<h2>{} / {}</h2>\n", anchor(index), html_escape(run.meta.experiment),
                                html_escape(run.meta.run_id));
  out += "<table class=\"meta\">\n";
  auto row = [&](const std::string& k, const std::string& v_html) {
    out += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", k, v_html);
  };
  row("status", run_status_html(run, options));
  row("file", html_escape(run.path));
  if (const auto it = options.stale.find(run.path); it != options.stale.end())
    out += fmt::format("<tr><th>shown as read earlier</th><td class=\"note\">{}</td></tr>\n", html_escape(it->second));
  row("created / finished", html_escape(run.created) + " / " + (run.finished.empty() ? "-" : html_escape(run.finished)));
  row("monitor", html_escape(run.meta.monitor) + " (" + to_string(run.meta.monitor_mode) + ")");
  row("seed, config hash", fmt::format("{}, {}", run.meta.seed, html_escape(run.meta.config_hash)));
  row("chestlab, LibTorch, device",
      html_escape(fmt::format("{}, {}, {} ({} threads) on {}", run.chestlab_version, run.environment.libtorch_version,
                              run.environment.device, run.environment.threads, run.environment.hostname)));
  if (!run.skipped.empty()) row("skipped samples", std::to_string(run.skipped.size()));
  out += "</table>\n<h3>Configuration</h3>\n" + config_summary_html(run);
  out += "<h3>Folds (values at each fold's best epoch)</h3>\n" + folds_html(run);
  out += test_html(run);
  out += "<h3>Learning curves</h3>\n" + curves_html(run, options.all_metrics);
  out += per_image_html(run, options);
  return out + "</section>\n";
}

}  // namespace

std::string render_report_html(const std::vector<RunInfo>& runs, const ReportOptions& options) {
  const bool live = page_is_live(runs, options);
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  if (live) out += fmt::format("<meta http-equiv=\"refresh\" content=\"{}\">\n", options.live_refresh_seconds);
  out += fmt::format("<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n", html_escape(options.title), kStyle);
  out += fmt::format("<h1>{}</h1>\n<p class=\"sub\">{}{} run{} &middot; generated {}</p>\n", html_escape(options.title),
                     options.source.empty() ? "" : html_escape(options.source) + " &middot; ", runs.size(),
                     runs.size() == 1 ? "" : "s", html_escape(utc_now_iso8601()));
  if (live)
    out += fmt::format("<p class=\"live\">live: refreshes every {} s, last written {}</p>\n",
                       options.live_refresh_seconds,
                       html_escape(options.written_at.empty() ? local_time_hms() : options.written_at));
  if (!options.problems.empty()) {
    out += "<div class=\"note\"><p>Files left out:</p><ul>\n";
    for (const auto& p : options.problems) out += "<li>" + html_escape(p) + "</li>\n";
    out += "</ul></div>\n";
  }
  if (!options.stale.empty()) {
    out += "<div class=\"note\"><p>Shown as read earlier (the file could not be read this time):</p><ul>\n";
    for (const auto& [path, why] : options.stale) out += "<li>" + html_escape(why) + "</li>\n";
    out += "</ul></div>\n";
  }
  if (runs.empty()) return out + "<p>No run files found.</p>\n</body>\n</html>\n";
  out += "<nav><ul>\n";
  for (std::size_t i = 0; i < runs.size(); ++i)
    out += fmt::format("<li><a href=\"#{}\">{} / {}</a> ({}{})</li>\n", anchor(i), html_escape(runs[i].meta.experiment),
                       html_escape(runs[i].meta.run_id), to_string(runs[i].status),
                       runs[i].status == RunStatus::Running && options.abandoned.count(runs[i].path) ? ", no process"
                                                                                                    : "");
  out += "</ul></nav>\n<h2>Overview: every metric at each fold's best epoch</h2>\n";
  out += "<p class=\"sub\">* fold not finished: left out of mean ± std (sample std, n = finished folds).</p>\n";
  out += overview_html(runs);
  for (std::size_t i = 0; i < runs.size(); ++i) out += run_html(runs[i], i, options);
  return out + "</body>\n</html>\n";
}

}  // namespace chestlab

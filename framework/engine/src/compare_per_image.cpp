// `chestlab compare --per-image`: per-image values of one run summarised, and two runs paired
// image by image with the Wilcoxon signed-rank test (see compare.h).
#include <boost/math/distributions/normal.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "chestlab/engine/compare.h"
#include "chestlab/errors.h"
#include "text_grid.h"

namespace chestlab {

std::string to_string(PerImagePart part) { return part == PerImagePart::Test ? "test" : "validation"; }

namespace {

using text::csv_field;
using text::Grid;
using text::join;
using text::markdown_escape;

std::string run_name(const RunInfo& run) { return run.meta.experiment + "/" + run.meta.run_id; }

std::string number(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }
std::string signed_number(double v) { return std::isfinite(v) ? fmt::format("{:+.4f}", v) : "-"; }
std::string percent(double share) { return fmt::format("{:.1f}%", 100 * share); }

std::string join_folds(const std::vector<int>& folds, const char* separator = ", ") {
  std::vector<std::string> parts;
  for (int k : folds) parts.push_back(std::to_string(k));
  return join(parts, separator);
}

std::string fold_text(int fold) { return fold < 0 ? "test" : std::to_string(fold); }

bool has_column(const PerImageScores& scores, const std::string& metric) { return scores.column(metric) != nullptr; }

bool has_any(const RunInfo& run, const std::string& metric, PerImagePart part) {
  if (part == PerImagePart::Test) return has_column(run.test_per_image, metric);
  return std::any_of(run.folds.begin(), run.folds.end(),
                     [&](const FoldInfo& f) { return has_column(f.per_image, metric); });
}

std::string render_grid(const Grid& grid, std::size_t left, CompareFormat format) {
  return format == CompareFormat::Markdown ? text::render_markdown(grid, left) : text::render_aligned(grid, left);
}

std::string direction_text(bool maximize) { return maximize ? "higher is better" : "lower is better"; }

}  // namespace

std::vector<std::string> per_image_metrics(const RunInfo& run) {
  std::vector<std::string> order;
  std::set<std::string> seen;
  auto add = [&](const PerImageScores& scores) {
    for (const std::string& m : scores.metrics)
      if (seen.insert(m).second) order.push_back(m);
  };
  for (const FoldInfo& fold : run.folds) add(fold.per_image);
  add(run.test_per_image);
  return order;
}

std::string per_image_missing(const RunInfo& run, const std::string& metric) {
  const std::vector<std::string> have = per_image_metrics(run);
  if (metric.empty())
    return have.empty() ? fmt::format("run {} has no per-image values (none of its metrics offers them, or its "
                                      "file predates them)",
                                      run_name(run))
                        : fmt::format("per-image values in {}: {}", run_name(run), join(have, ", "));
  if (have.empty())
    return fmt::format("run {} has no per-image values of '{}' (it has none: none of its metrics offers them, "
                       "or its file predates them)",
                       run_name(run), metric);
  return fmt::format("run {} has no per-image values of '{}'; per-image values in {}: {}", run_name(run), metric,
                     run_name(run), join(have, ", "));
}

PerImageSummary summarize_per_image(const RunInfo& run, const std::string& metric, PerImagePart part, int worst) {
  if (!has_any(run, metric, part)) {
    if (part == PerImagePart::Test && has_any(run, metric, PerImagePart::Validation))
      throw ConfigError(fmt::format("run {} has per-image values of '{}' for its folds, not for a test part",
                                    run_name(run), metric));
    throw ConfigError(per_image_missing(run, metric));
  }
  PerImageSummary s;
  s.run = run_name(run);
  s.metric = metric;
  s.part = part;
  s.maximize = metric_maximized(run, metric);
  std::vector<PerImageValue> all;
  auto take = [&](int fold, const PerImageScores& scores) {
    const std::vector<double>* column = scores.column(metric);
    if (!column) return;
    for (std::size_t i = 0; i < column->size() && i < scores.ids.size(); ++i) {
      const double v = (*column)[i];
      if (!std::isfinite(v)) {
        ++s.non_finite;
        continue;
      }
      all.push_back({fold, scores.ids[i], v});
    }
  };
  if (part == PerImagePart::Test) {
    take(-1, run.test_per_image);
  } else {
    for (const FoldInfo& fold : run.folds) {
      if (!has_column(fold.per_image, metric)) continue;
      if (!is_finished(fold.status)) {
        s.unfinished_folds.push_back(fold.index);
        continue;
      }
      s.folds.push_back(fold.index);
      take(fold.index, fold.per_image);
    }
  }
  s.n = all.size();
  for (const PerImageValue& v : all) s.values.push_back(v.value);
  if (s.n > 0) {
    double sum = 0;
    std::size_t ones = 0, zeros = 0;
    for (double v : s.values) {
      sum += v;
      ones += v == 1.0 ? 1 : 0;
      zeros += v == 0.0 ? 1 : 0;
    }
    const double n = static_cast<double>(s.n);
    s.mean = sum / n;
    s.share_one = static_cast<double>(ones) / n;
    s.share_zero = static_cast<double>(zeros) / n;
    std::vector<double> sorted = s.values;
    std::sort(sorted.begin(), sorted.end());
    s.min = sorted.front();
    s.max = sorted.back();
    const std::size_t mid = s.n / 2;
    s.median = s.n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
  // Worst first by the metric's direction; equal values keep their order (fold, then file order).
  std::stable_sort(all.begin(), all.end(), [&](const PerImageValue& x, const PerImageValue& y) {
    return s.maximize ? x.value < y.value : x.value > y.value;
  });
  if (worst > 0 && all.size() > static_cast<std::size_t>(worst)) all.resize(static_cast<std::size_t>(worst));
  if (worst <= 0) all.clear();
  s.worst = std::move(all);
  return s;
}

std::vector<PerImageSummary> summarize_per_image(const RunInfo& run, int worst) {
  std::vector<PerImageSummary> out;
  for (const std::string& m : per_image_metrics(run)) {
    if (has_any(run, m, PerImagePart::Validation)) out.push_back(summarize_per_image(run, m, PerImagePart::Validation, worst));
    if (has_any(run, m, PerImagePart::Test)) out.push_back(summarize_per_image(run, m, PerImagePart::Test, worst));
  }
  return out;
}

WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& diffs) {
  WilcoxonResult r;
  std::vector<double> nonzero;
  for (double d : diffs) {
    if (d == 0) ++r.zeros;
    else nonzero.push_back(d);
  }
  r.n = nonzero.size();
  if (r.n == 0) return r;
  std::vector<std::size_t> order(r.n);
  for (std::size_t i = 0; i < r.n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t x, std::size_t y) { return std::fabs(nonzero[x]) < std::fabs(nonzero[y]); });
  double tie_term = 0;  // sum of t^3 - t over groups of t equal |differences|
  for (std::size_t start = 0; start < r.n;) {
    std::size_t end = start + 1;
    while (end < r.n && std::fabs(nonzero[order[end]]) == std::fabs(nonzero[order[start]])) ++end;
    const double t = static_cast<double>(end - start);
    const double rank = (static_cast<double>(start + 1) + static_cast<double>(end)) / 2;  // average of start+1..end
    for (std::size_t i = start; i < end; ++i) (nonzero[order[i]] > 0 ? r.w_plus : r.w_minus) += rank;
    tie_term += t * t * t - t;
    start = end;
  }
  const double n = static_cast<double>(r.n);
  const double mean = n * (n + 1) / 4;
  const double variance = n * (n + 1) * (2 * n + 1) / 24 - tie_term / 48;
  r.statistic = std::min(r.w_plus, r.w_minus);
  r.tested = true;
  // The variance is positive for n >= 1 (t^3 - t <= n^3 - n and n(n+1)(2n+1)/24 > (n^3 - n)/48).
  r.z = (r.w_plus - mean) / std::sqrt(variance);
  const boost::math::normal standard;
  r.p = std::min(1.0, 2 * boost::math::cdf(boost::math::complement(standard, std::fabs(r.z))));
  return r;
}

namespace {

// Pairs one part's images by id (k-th occurrence with k-th occurrence) and adds them to `out`.
void pair_scores(int fold, const PerImageScores& a, const PerImageScores& b, const std::string& metric,
                 PerImagePartComparison& out) {
  const std::vector<double>& va = *a.column(metric);
  const std::vector<double>& vb = *b.column(metric);
  std::map<std::string, std::vector<std::size_t>> in_b;
  for (std::size_t i = 0; i < b.ids.size() && i < vb.size(); ++i) in_b[b.ids[i]].push_back(i);
  std::map<std::string, std::size_t> used;  // occurrences of an id in A so far
  std::size_t matched = 0;
  for (std::size_t i = 0; i < a.ids.size() && i < va.size(); ++i) {
    const std::string& id = a.ids[i];
    const std::size_t k = used[id]++;
    const auto it = in_b.find(id);
    if (it == in_b.end() || k >= it->second.size()) {
      ++out.only_a;
      continue;
    }
    ++matched;
    const double x = va[i], y = vb[it->second[k]];
    if (!std::isfinite(x) || !std::isfinite(y)) {
      ++out.non_finite;
      continue;
    }
    out.pairs.push_back({fold, id, x, y, x - y});
  }
  out.only_b += std::min(b.ids.size(), vb.size()) - matched;
}

void finish_part(PerImagePartComparison& part, bool maximize) {
  if (part.pairs.empty()) return;
  std::vector<double> diffs;
  double sa = 0, sb = 0;
  for (const PerImagePair& p : part.pairs) {
    sa += p.a;
    sb += p.b;
    diffs.push_back(p.diff);
    if (p.a == p.b) ++part.tied;
    else if ((p.a > p.b) == maximize) ++part.a_better;
    else ++part.b_better;
  }
  const double n = static_cast<double>(part.pairs.size());
  part.mean_a = sa / n;
  part.mean_b = sb / n;
  double sd = 0;
  for (double d : diffs) sd += d;
  part.mean_diff = sd / n;
  part.wilcoxon = wilcoxon_signed_rank(diffs);
}

}  // namespace

PerImageComparison compare_per_image(const RunInfo& a, const RunInfo& b, const std::string& metric) {
  const bool in_a = has_any(a, metric, PerImagePart::Validation) || has_any(a, metric, PerImagePart::Test);
  const bool in_b = has_any(b, metric, PerImagePart::Validation) || has_any(b, metric, PerImagePart::Test);
  if (!in_a) throw ConfigError("--per-image: " + per_image_missing(a, metric));
  if (!in_b) throw ConfigError("--per-image: " + per_image_missing(b, metric));
  PerImageComparison c;
  c.metric = metric;
  c.run_a = run_name(a);
  c.run_b = run_name(b);
  c.maximize = metric_maximized(a, metric);

  PerImagePartComparison validation;
  std::set<int> folds_b;
  for (const FoldInfo& fb : b.folds)
    if (has_column(fb.per_image, metric)) folds_b.insert(fb.index);
  for (const FoldInfo& fa : a.folds) {
    if (!has_column(fa.per_image, metric)) continue;
    const FoldInfo* fb = b.fold(fa.index);
    if (!fb || !has_column(fb->per_image, metric)) {
      c.folds_only_a.push_back(fa.index);
      continue;
    }
    folds_b.erase(fa.index);
    if (!is_finished(fa.status) || !is_finished(fb->status)) {
      c.folds_unfinished.push_back(fa.index);
      continue;
    }
    if (fa.val_ids != fb->val_ids) c.same_folds = false;
    validation.folds.push_back(fa.index);
    pair_scores(fa.index, fa.per_image, fb->per_image, metric, validation);
  }
  c.folds_only_b.assign(folds_b.begin(), folds_b.end());
  if (!validation.folds.empty()) {
    finish_part(validation, c.maximize);
    c.validation = std::move(validation);
  }
  if (has_column(a.test_per_image, metric) && has_column(b.test_per_image, metric)) {
    PerImagePartComparison test;
    test.part = PerImagePart::Test;
    pair_scores(-1, a.test_per_image, b.test_per_image, metric, test);
    finish_part(test, c.maximize);
    c.test = std::move(test);
  }
  if (!c.validation && !c.test) {
    std::string why;
    if (!c.folds_unfinished.empty()) why = fmt::format("; folds {} are not finished in both", join_folds(c.folds_unfinished));
    throw ConfigError(fmt::format(
        "--per-image: {} and {} have no finished fold and no test part in common with per-image values of '{}' "
        "(folds with them: A {}, B {}){}",
        c.run_a, c.run_b, metric,
        [&] {
          std::vector<int> f;
          for (const FoldInfo& x : a.folds)
            if (has_column(x.per_image, metric)) f.push_back(x.index);
          return f.empty() ? std::string("none") : join_folds(f);
        }(),
        [&] {
          std::vector<int> f;
          for (const FoldInfo& x : b.folds)
            if (has_column(x.per_image, metric)) f.push_back(x.index);
          return f.empty() ? std::string("none") : join_folds(f);
        }(),
        why));
  }
  return c;
}

// ---- rendering ----

namespace {

std::string summary_notes(const PerImageSummary& s) {
  std::string out;
  if (!s.unfinished_folds.empty())
    out += fmt::format("note: {} of {}: fold(s) {} not finished, left out\n", s.metric, s.run,
                       join_folds(s.unfinished_folds));
  if (s.non_finite > 0)
    out += fmt::format("note: {} of {} ({}): {} value(s) not finite, left out\n", s.metric, s.run, to_string(s.part),
                       s.non_finite);
  return out;
}

std::string part_text(const PerImageSummary& s) {
  if (s.part == PerImagePart::Test) return "test";
  return s.folds.empty() ? "validation (no finished fold)" : "validation, folds " + join_folds(s.folds);
}

}  // namespace

std::string render_per_image_summaries(const std::vector<PerImageSummary>& summaries, CompareFormat format) {
  if (format == CompareFormat::Csv) {
    std::string out = "run,metric,part,stat,fold,id,value\n";
    for (const PerImageSummary& s : summaries) {
      const std::string head = csv_field(s.run) + "," + csv_field(s.metric) + "," + to_string(s.part) + ",";
      auto stat = [&](const char* name, const std::string& value) { out += head + name + ",,," + value + "\n"; };
      stat("n_images", std::to_string(s.n));
      if (s.n > 0) {
        stat("mean", number(s.mean));
        stat("median", number(s.median));
        stat("min", number(s.min));
        stat("max", number(s.max));
        stat("share_one", number(s.share_one));
        stat("share_zero", number(s.share_zero));
      }
      stat("non_finite", std::to_string(s.non_finite));
      for (const PerImageValue& w : s.worst)
        out += head + "worst," + fold_text(w.fold) + "," + csv_field(w.id) + "," + number(w.value) + "\n";
    }
    return out;
  }
  const bool md = format == CompareFormat::Markdown;
  std::string out;
  // Runs in order of first appearance, each with its summary table and worst lists.
  std::vector<std::string> runs;
  for (const PerImageSummary& s : summaries)
    if (std::find(runs.begin(), runs.end(), s.run) == runs.end()) runs.push_back(s.run);
  for (std::size_t r = 0; r < runs.size(); ++r) {
    if (r) out += "\n";
    out += (md ? "### per-image values of " + markdown_escape(runs[r]) + "\n\n" : "per-image values of " + runs[r] + "\n");
    Grid grid{{"metric", "part", "images", "mean", "median", "min", "max", "= 1", "= 0"}};
    std::string notes;
    for (const PerImageSummary& s : summaries) {
      if (s.run != runs[r]) continue;
      const bool any = s.n > 0;
      grid.push_back({s.metric, part_text(s), std::to_string(s.n), any ? number(s.mean) : "-",
                      any ? number(s.median) : "-", any ? number(s.min) : "-", any ? number(s.max) : "-",
                      any ? percent(s.share_one) : "-", any ? percent(s.share_zero) : "-"});
      notes += summary_notes(s);
    }
    out += render_grid(grid, 2, format);
    for (const PerImageSummary& s : summaries) {
      if (s.run != runs[r] || s.worst.empty()) continue;
      const std::string title = fmt::format("worst {} of {} ({}; {})", s.worst.size(), s.metric, to_string(s.part),
                                            direction_text(s.maximize));
      out += md ? "\n#### " + markdown_escape(title) + "\n\n" : "\n" + title + "\n";
      Grid worst{{"fold", "id", "value"}};
      for (const PerImageValue& w : s.worst) worst.push_back({fold_text(w.fold), w.id, number(w.value)});
      // fold right-aligned in a table, id left-aligned: columns 0 and 1 left in markdown.
      out += render_grid(worst, 2, format);
    }
    if (!notes.empty()) {
      out += "\n";
      if (!md) {
        out += notes;
      } else {
        std::size_t from = 0;
        for (std::size_t nl = notes.find('\n'); nl != std::string::npos; from = nl + 1, nl = notes.find('\n', from))
          out += "- " + markdown_escape(notes.substr(from, nl - from)) + "\n";
      }
    }
  }
  return out;
}

std::string render_per_image_paired(const PerImageComparison& c, CompareFormat format) {
  std::vector<const PerImagePartComparison*> parts;
  if (c.validation) parts.push_back(&*c.validation);
  if (c.test) parts.push_back(&*c.test);
  if (format == CompareFormat::Csv) {
    std::string out = "metric,part,stat,value\n";
    for (const PerImagePartComparison* p : parts) {
      const std::string head = csv_field(c.metric) + "," + to_string(p->part) + ",";
      auto stat = [&](const char* name, const std::string& value) { out += head + name + "," + value + "\n"; };
      if (p->part == PerImagePart::Validation) stat("folds", join_folds(p->folds, ";"));
      stat("n_pairs", std::to_string(p->pairs.size()));
      stat("mean_a", number(p->mean_a));
      stat("mean_b", number(p->mean_b));
      stat("mean_a_minus_b", number(p->mean_diff));
      stat("a_better", std::to_string(p->a_better));
      stat("b_better", std::to_string(p->b_better));
      stat("tied", std::to_string(p->tied));
      stat("only_a", std::to_string(p->only_a));
      stat("only_b", std::to_string(p->only_b));
      stat("non_finite", std::to_string(p->non_finite));
      stat("wilcoxon_n", std::to_string(p->wilcoxon.n));
      if (p->wilcoxon.tested) {
        stat("wilcoxon_w", fmt::format("{}", p->wilcoxon.statistic));
        stat("wilcoxon_w_plus", fmt::format("{}", p->wilcoxon.w_plus));
        stat("wilcoxon_w_minus", fmt::format("{}", p->wilcoxon.w_minus));
        stat("wilcoxon_z", number(p->wilcoxon.z));
        stat("wilcoxon_p", fmt::format("{:.4g}", p->wilcoxon.p));
      }
    }
    return out;
  }
  const bool md = format == CompareFormat::Markdown;
  std::string out = fmt::format("{}per-image paired comparison of {}: A = {}, B = {} ({})\n", md ? "### " : "",
                                md ? markdown_escape(c.metric) : c.metric, md ? markdown_escape(c.run_a) : c.run_a,
                                md ? markdown_escape(c.run_b) : c.run_b, direction_text(c.maximize));
  if (md) out += "\n";
  Grid grid{{"part", "folds", "pairs", "mean A", "mean B", "A - B", "A better", "B better", "tied", "only A",
             "only B"}};
  for (const PerImagePartComparison* p : parts)
    grid.push_back({to_string(p->part), p->part == PerImagePart::Test ? "-" : join_folds(p->folds),
                    std::to_string(p->pairs.size()), p->pairs.empty() ? "-" : number(p->mean_a),
                    p->pairs.empty() ? "-" : number(p->mean_b), p->pairs.empty() ? "-" : signed_number(p->mean_diff),
                    std::to_string(p->a_better), std::to_string(p->b_better), std::to_string(p->tied),
                    std::to_string(p->only_a), std::to_string(p->only_b)});
  out += render_grid(grid, 2, format);
  out += "\n";
  std::vector<std::string> lines;  // one a line; Markdown list items
  for (const PerImagePartComparison* p : parts) {
    const WilcoxonResult& w = p->wilcoxon;
    const std::string label = to_string(p->part);
    if (!w.tested) {
      lines.push_back(fmt::format("{}: no Wilcoxon test: {}", label,
                                  p->pairs.empty() ? "no image in both runs" : "every pair is tied (A - B = 0)"));
      continue;
    }
    lines.push_back(fmt::format(
        "{}: Wilcoxon signed-rank (two-sided, normal approximation, tie-corrected): W = {} (W+ = {}, W- = {}), "
        "n = {} non-zero of {} pairs, z = {:+.4f}, p = {:.4g}",
        label, w.statistic, w.w_plus, w.w_minus, w.n, p->pairs.size(), w.z, w.p));
    if (w.n < 20)
      lines.push_back(fmt::format("{}: note: {} non-zero differences; the normal approximation is rough below about 20",
                                  label, w.n));
  }
  for (const PerImagePartComparison* p : parts) {
    if (p->only_a + p->only_b > 0)
      lines.push_back(fmt::format("{}: {} image(s) only in A and {} only in B: not paired", to_string(p->part),
                                  p->only_a, p->only_b));
    if (p->non_finite > 0)
      lines.push_back(
          fmt::format("{}: {} pair(s) with a value not finite: left out", to_string(p->part), p->non_finite));
  }
  if (!c.folds_only_a.empty())
    lines.push_back(fmt::format("fold(s) {}: per-image values only in A: not paired", join_folds(c.folds_only_a)));
  if (!c.folds_only_b.empty())
    lines.push_back(fmt::format("fold(s) {}: per-image values only in B: not paired", join_folds(c.folds_only_b)));
  if (!c.folds_unfinished.empty())
    lines.push_back(fmt::format("fold(s) {}: not finished in both runs: left out", join_folds(c.folds_unfinished)));
  if (!c.same_folds)
    lines.push_back("warning: some folds hold different validation samples in the two runs; a paired comparison "
                    "assumes the same folds");
  for (const std::string& line : lines) out += (md ? "- " + markdown_escape(line) : line) + "\n";
  return out;
}

}  // namespace chestlab

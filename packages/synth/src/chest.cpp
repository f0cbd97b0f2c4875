// Procedural chest radiographs (see chestlab/synth/chest.h).
//
// How an image is made:
//   1. Anatomy (body outline, lungs, heart, ribs, clavicles, spine, airway, vessels) is
//      sampled as geometry in a unit "anatomy frame" and placed by a per-image pose.
//   2. Each anatomical layer is rasterised into an 8-bit map at a working resolution of at
//      most 256 px and blurred (soft edges); radiographs are smooth, so larger outputs only
//      upsample this part. Masks (lungs, opacities) are rasterised at the full size.
//   3. A scalar loop mixes the layers into a density image (air in the lungs is dark, soft
//      tissue and bone bright, opacities fill lung air), the result is upsampled to the
//      output size and per-pixel Gaussian noise is added.
// OpenCV only ever touches 8/16-bit data (its fixed-point paths are bit-exact whatever SIMD
// the CPU has); all float arithmetic is plain C++ here, so outputs are reproducible.
#include "chestlab/synth/chest.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "chestlab/rng.h"

namespace chestlab::synth {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kMaxWorkingSize = 256;
constexpr int kSubpixelBits = 4;  // OpenCV drawing "shift": 1/16 px precision
constexpr double kSubpixelScale = 1 << kSubpixelBits;

// Independent streams: findings depend on (seed, index), anatomy on (seed, patient).
constexpr std::uint64_t kFindingsStream = 0x6368657374666e64ull;  // "chestfnd"
constexpr std::uint64_t kAnatomyStream = 0x6368657374616e61ull;   // "chestana"

using Path = std::vector<cv::Point2d>;

struct Ellipse {
  cv::Point2d center;
  cv::Size2d axes;  // semi-axes
  double angle_deg = 0.0;
};

// A band along a path whose width tapers linearly from `width` to `end_width` (ribs keep
// theirs, vessels thin out).
struct Stroke {
  Path path;
  double width = 0.0;
  double end_width = -1.0;  // < 0: same as width
};

double clamp01(double v) { return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v); }

// ---- geometry helpers ------------------------------------------------------------------

// Closed Catmull-Rom spline through the control points: smooth organ outlines from a few
// anatomical landmarks.
Path closed_spline(const Path& c, int steps_per_segment) {
  const std::size_t n = c.size();
  Path out;
  out.reserve(n * steps_per_segment);
  for (std::size_t i = 0; i < n; ++i) {
    const cv::Point2d& p0 = c[(i + n - 1) % n];
    const cv::Point2d& p1 = c[i];
    const cv::Point2d& p2 = c[(i + 1) % n];
    const cv::Point2d& p3 = c[(i + 2) % n];
    for (int s = 0; s < steps_per_segment; ++s) {
      const double t = static_cast<double>(s) / steps_per_segment;
      const double t2 = t * t, t3 = t2 * t;
      out.push_back(0.5 * ((2.0 * p1) + (p2 - p0) * t + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * t2 +
                           (3.0 * p1 - p0 - 3.0 * p2 + p3) * t3));
    }
  }
  return out;
}

// Quadratic Bezier, sampled.
Path bezier(cv::Point2d a, cv::Point2d control, cv::Point2d b, int samples) {
  Path out;
  for (int i = 0; i <= samples; ++i) {
    const double t = static_cast<double>(i) / samples;
    out.push_back((1 - t) * (1 - t) * a + 2 * (1 - t) * t * control + t * t * b);
  }
  return out;
}

// Image-left structures are described in "mirrored" x (distance from the near image edge);
// this maps them to the image-right side.
cv::Point2d on_side(cv::Point2d p, bool right) { return right ? cv::Point2d(1.0 - p.x, p.y) : p; }
Path on_side(Path path, bool right) {
  for (auto& p : path) p = on_side(p, right);
  return path;
}

// Where the anatomy frame lands in the image (normalised [0,1] coordinates): patients are
// not centred, not upright and not equally far from the detector.
struct Pose {
  double cx = 0.5, cy = 0.5, scale = 1.0, angle_rad = 0.0;

  cv::Point2d map(cv::Point2d p) const {
    const double dx = p.x - 0.5, dy = p.y - 0.5;
    const double c = std::cos(angle_rad), s = std::sin(angle_rad);
    return {cx + scale * (c * dx - s * dy), cy + scale * (s * dx + c * dy)};
  }
  double map_y(double y) const { return cy + scale * (y - 0.5); }
};

// Converts anatomy coordinates to OpenCV fixed-point pixel coordinates for one raster size.
// A normalised coordinate u covers pixel floor(u * size); OpenCV's integer coordinates are
// pixel centres, hence the -0.5, which keeps full-size and working-size rasters aligned.
struct Raster {
  Pose pose;
  double pixels = 1.0;

  cv::Point point(cv::Point2d anatomy) const {
    const cv::Point2d p = pose.map(anatomy);
    return {static_cast<int>(std::lround((p.x * pixels - 0.5) * kSubpixelScale)),
            static_cast<int>(std::lround((p.y * pixels - 0.5) * kSubpixelScale))};
  }
  double length(double anatomy_length) const { return anatomy_length * pose.scale * pixels; }
};

void fill_polygon(cv::Mat& img, const Raster& r, const Path& path, int value, int line_type) {
  std::vector<cv::Point> pts;
  pts.reserve(path.size());
  for (const auto& p : path) pts.push_back(r.point(p));
  cv::fillPoly(img, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(value), line_type,
               kSubpixelBits);
}

void fill_ellipse(cv::Mat& img, const Raster& r, const Ellipse& e, int value, int line_type) {
  const cv::Size axes(static_cast<int>(std::lround(r.length(e.axes.width) * kSubpixelScale)),
                      static_cast<int>(std::lround(r.length(e.axes.height) * kSubpixelScale)));
  const double angle = e.angle_deg + r.pose.angle_rad * 180.0 / kPi;
  cv::ellipse(img, r.point(e.center), axes, angle, 0, 360, cv::Scalar(value), cv::FILLED, line_type,
              kSubpixelBits);
}

// The outline of a stroke: offsets to both sides along the path normals. Drawn as one
// anti-aliased polygon, which is far cheaper than OpenCV's thick polylines (a polygon and
// a round joint per segment).
Path band_outline(const Stroke& s) {
  const std::size_t n = s.path.size();
  const double end_width = s.end_width < 0.0 ? s.width : s.end_width;
  Path left, right;
  for (std::size_t i = 0; i < n; ++i) {
    const cv::Point2d d = s.path[std::min(i + 1, n - 1)] - s.path[i == 0 ? 0 : i - 1];
    const double len = std::max(1e-12, std::hypot(d.x, d.y));
    const double half = 0.5 * (s.width + (end_width - s.width) * i / std::max<std::size_t>(1, n - 1));
    const cv::Point2d normal(-d.y / len * half, d.x / len * half);
    left.push_back(s.path[i] + normal);
    right.push_back(s.path[i] - normal);
  }
  left.insert(left.end(), right.rbegin(), right.rend());
  return left;
}

void draw_stroke(cv::Mat& img, const Raster& r, const Stroke& s, int value, int line_type) {
  fill_polygon(img, r, band_outline(s), value, line_type);
}

// Vessels are at most ~2 px wide at working resolution: one-pixel anti-aliased lines whose
// brightness, rather than width, fades towards the periphery (cheaper than polygons).
void draw_vessel(cv::Mat& img, const Raster& r, const Stroke& s, int value) {
  const double end_width = s.end_width < 0.0 ? s.width : s.end_width;
  constexpr double kFullWidth = 0.006;  // vessels this wide or wider draw at `value`
  for (std::size_t i = 0; i + 1 < s.path.size(); ++i) {
    const double t = (i + 0.5) / (s.path.size() - 1);
    const double width = s.width + (end_width - s.width) * t;
    const int v = static_cast<int>(std::lround(value * std::min(1.0, width / kFullWidth)));
    cv::line(img, r.point(s.path[i]), r.point(s.path[i + 1]), cv::Scalar(v), 1, cv::LINE_AA, kSubpixelBits);
  }
}

// ---- anatomy ---------------------------------------------------------------------------

// Landmarks of one lung in mirrored x (0 = the lung's own image edge, 0.5 = midline).
struct LungFrame {
  double top = 0.1;           // apex
  double costophrenic = 0.8;  // lowest point, the lateral angle
  double dome = 0.7;          // top of the hemidiaphragm
  double lateral = 0.1;       // lateral chest wall
  double medial = 0.44;       // mediastinal border
  double heart_width = 1.0;   // scales the cardiac notch (heart side only)
};

struct Anatomy {
  LungFrame frames[2];  // [0] image-left (patient's right), [1] image-right (heart side)
  Path body;
  std::vector<Ellipse> arms;
  Path lungs[2];
  Ellipse heart;
  std::vector<Ellipse> hila;
  std::vector<Stroke> posterior_ribs, anterior_ribs, clavicles, airway, vessels, discs;
  std::vector<Ellipse> humeral_heads, pedicles;
  double spine_half_width = 0.03;
  bool stomach_bubble = false;
  Ellipse bubble;
};

LungFrame sample_lung_frame(Rng& rng, bool heart_side) {
  LungFrame f;
  f.top = rng.uniform(0.085, 0.125);
  // The left hemidiaphragm (heart side) usually sits lower than the right, above the stomach.
  f.costophrenic = rng.uniform(0.78, 0.84) + (heart_side ? 0.015 : 0.0);
  f.dome = f.costophrenic - rng.uniform(0.075, 0.11);
  f.lateral = rng.uniform(0.085, 0.125);
  f.medial = rng.uniform(0.425, 0.45);
  f.heart_width = rng.uniform(0.9, 1.1);
  return f;
}

Path lung_outline(const LungFrame& f, bool heart_side, Rng& rng) {
  const double h = f.costophrenic - f.top;
  const double lat = f.lateral;
  const double med = f.medial;
  auto j = [&rng] { return rng.uniform(-0.007, 0.007); };
  Path c = {
      {med - 0.10 + j(), f.top},                      // apex
      {lat + 0.10 + j(), f.top + 0.06 * h + j()},
      {lat + 0.025 + j(), f.top + 0.30 * h + j()},
      {lat + j(), f.top + 0.62 * h + j()},
      {lat + 0.006, f.top + 0.93 * h},
      {lat + 0.014, f.costophrenic},                 // costophrenic angle
      {lat + 0.06 + j(), f.dome + 0.045 + j()},      // hemidiaphragm
  };
  if (!heart_side) {
    c.insert(c.end(), {
                          {(lat + med) / 2 + 0.02 + j(), f.dome},
                          {med - 0.015, f.dome + 0.05 + j()},  // cardiophrenic angle
                          {med + j(), f.top + 0.64 * h},
                          {med - 0.005 + j(), f.top + 0.38 * h},  // hilum
                          {med - 0.035 + j(), f.top + 0.12 * h},
                      });
  } else {
    const double w = f.heart_width;
    c.insert(c.end(), {
                          {(lat + med - 0.17 * w) / 2 + 0.02 + j(), f.dome},
                          {med - 0.17 * w + j(), f.dome + 0.055},     // cardiac apex
                          {med - 0.135 * w + j(), f.top + 0.68 * h},  // left ventricle
                          {med - 0.07 * w + j(), f.top + 0.48 * h},   // left atrium, pulmonary artery
                          {med - 0.02 + j(), f.top + 0.30 * h},       // aortic knob
                          {med - 0.04 + j(), f.top + 0.12 * h},
                      });
  }
  return on_side(closed_spline(c, 8), heart_side);
}

Path body_outline(const Anatomy& a, Rng& rng) {
  const double neck = rng.uniform(0.085, 0.115);
  Path half[2];
  for (int side = 0; side < 2; ++side) {
    const LungFrame& f = a.frames[side];
    const double shoulder = f.top - rng.uniform(0.0, 0.035);
    const double wall = f.lateral - rng.uniform(0.035, 0.06);  // chest wall soft tissue
    Path p = {
        {0.5 - neck, -0.1},
        {0.5 - neck - 0.005, shoulder - 0.07},
        {0.5 - neck - 0.06, shoulder - 0.025},
        {0.22, shoulder},
        {0.1, shoulder + 0.035},
        {0.02, shoulder + 0.09},
        {wall, 0.35},
        {wall + 0.005, 0.65},
        {wall + 0.03, 1.1},
    };
    half[side] = on_side(p, side == 1);
  }
  Path outline = half[0];
  outline.insert(outline.end(), half[1].rbegin(), half[1].rend());
  return closed_spline(outline, 6);
}

// One posterior rib leaves the spine slightly upwards, then curves down along the lateral
// chest wall; its anterior part returns medially and downwards, fainter.
void add_rib(Anatomy& a, bool right, double y0, double reach, Rng& rng) {
  const double x0 = 0.5 - a.spine_half_width - 0.004;
  const double rise = rng.uniform(0.17, 0.24), fall = rng.uniform(0.45, 0.55);
  Path posterior;
  for (int i = 0; i <= 10; ++i) {
    const double t = i / 10.0;
    posterior.push_back({x0 - t * reach, y0 - rise * reach * t + fall * reach * std::pow(t, 2.2)});
  }
  a.posterior_ribs.push_back({on_side(posterior, right), rng.uniform(0.02, 0.026)});
  const cv::Point2d end = posterior.back();
  const cv::Point2d front(std::max(end.x + 0.06, 0.5 - rng.uniform(0.13, 0.19)),
                          end.y + rng.uniform(0.11, 0.15));
  Path anterior = bezier(end, {end.x + 0.02, end.y + 0.075}, front, 8);
  a.anterior_ribs.push_back({on_side(anterior, right), rng.uniform(0.022, 0.028), 0.016});
}

void add_ribs(Anatomy& a, Rng& rng) {
  for (int side = 0; side < 2; ++side) {
    const LungFrame& f = a.frames[side];
    const int count = 9 + static_cast<int>(rng.below(2));
    const double spacing = (f.dome - f.top + 0.01) / (count - 0.5);
    const double full_reach = 0.5 - a.spine_half_width - f.lateral + 0.012;
    for (int k = 0; k < count; ++k) {
      const double y0 = f.top + 0.005 + k * spacing + rng.uniform(-0.006, 0.006);
      // Upper ribs are short: the thorax narrows towards the apex.
      const double reach = full_reach * (0.42 + 0.58 * std::min(1.0, (k + 1) / 3.5));
      add_rib(a, side == 1, y0, reach, rng);
    }
  }
}

void add_clavicles_and_shoulders(Anatomy& a, Rng& rng) {
  for (int side = 0; side < 2; ++side) {
    const double t = a.frames[side].top + rng.uniform(-0.01, 0.015);
    const Path clavicle = {{0.455, t + 0.075}, {0.36, t + 0.045}, {0.25, t + 0.01},
                           {0.13, t - 0.03},   {0.06, t - 0.045}};
    a.clavicles.push_back({on_side(clavicle, side == 1), rng.uniform(0.022, 0.03)});
    if (rng.chance(0.6)) {
      a.humeral_heads.push_back(
          {on_side(cv::Point2d(rng.uniform(-0.01, 0.03), t + 0.03), side == 1), {0.065, 0.075}, 0.0});
    }
  }
}

void add_spine_and_airway(Anatomy& a, Rng& rng) {
  const double top = std::min(a.frames[0].top, a.frames[1].top);
  const double step = rng.uniform(0.058, 0.068);
  for (double y = top - 0.1 + rng.uniform(0.0, step); y < 1.05; y += step) {
    const double w = a.spine_half_width;
    a.discs.push_back({{{0.5 - w, y}, {0.5 + w, y + 0.004}}, 0.007});
    for (int side = 0; side < 2; ++side) {
      a.pedicles.push_back(
          {on_side(cv::Point2d(0.5 - 0.7 * w, y + step / 2), side == 1), {0.008, 0.012}, 0.0});
    }
  }
  const cv::Point2d carina(0.5 + rng.uniform(-0.004, 0.008), top + rng.uniform(0.17, 0.22));
  a.airway.push_back({{{0.5, -0.1}, carina}, rng.uniform(0.028, 0.036)});
  a.airway.push_back({{carina, {carina.x - 0.065, carina.y + 0.085}}, 0.017});
  a.airway.push_back({{carina, {carina.x + 0.07, carina.y + 0.105}}, 0.015});
}

// Pulmonary vessels: tapering branches radiating from each hilum, some forking.
void add_vessels(Anatomy& a, Rng& rng) {
  for (int side = 0; side < 2; ++side) {
    const bool right = side == 1;
    const LungFrame& f = a.frames[side];
    const cv::Point2d hilum(f.medial - 0.05, f.top + 0.40 * (f.costophrenic - f.top));
    a.hila.push_back({on_side(hilum, right), {0.05, 0.09}, right ? -10.0 : 10.0});
    const int branches = 10 + static_cast<int>(rng.below(5));
    for (int b = 0; b < branches; ++b) {
      // Angle from the lateral direction; positive is downwards.
      double angle = (-70.0 + 150.0 * (b + rng.uniform()) / branches) * kPi / 180.0;
      Path path{hilum};
      const double width = rng.uniform(0.005, 0.0075);
      const int segments = 5 + static_cast<int>(rng.below(4));
      for (int s = 0; s < segments; ++s) {
        angle += rng.uniform(-0.25, 0.25);
        path.push_back(path.back() + cv::Point2d(-std::cos(angle), std::sin(angle)) * rng.uniform(0.026, 0.04));
        if (s == 2 && rng.chance(0.6)) {
          const double fork = angle + (rng.chance(0.5) ? 1 : -1) * rng.uniform(0.4, 0.7);
          const cv::Point2d start = path.back();
          const cv::Point2d end = start + cv::Point2d(-std::cos(fork), std::sin(fork)) * rng.uniform(0.04, 0.07);
          a.vessels.push_back({on_side(Path{start, (start + end) / 2, end}, right), width * 0.5, 0.0012});
        }
      }
      a.vessels.push_back({on_side(path, right), width, 0.0015});
    }
  }
}

Anatomy sample_anatomy(Rng& rng) {
  Anatomy a;
  a.frames[0] = sample_lung_frame(rng, false);
  a.frames[1] = sample_lung_frame(rng, true);
  a.spine_half_width = rng.uniform(0.028, 0.036);
  a.lungs[0] = lung_outline(a.frames[0], false, rng);
  a.lungs[1] = lung_outline(a.frames[1], true, rng);
  a.body = body_outline(a, rng);
  if (rng.chance(0.5)) {  // arms held beside the chest
    for (int side = 0; side < 2; ++side) {
      const double x = a.frames[side].lateral - rng.uniform(0.16, 0.19);
      a.arms.push_back({on_side(cv::Point2d(x, 0.5), side == 1), {0.08, 0.42}, 0.0});
    }
  }
  const LungFrame& hf = a.frames[1];
  const double heart_right = 0.5 - rng.uniform(0.085, 0.11);            // right atrium border
  const double heart_left = 1.0 - (hf.medial - 0.17 * hf.heart_width);  // cardiac apex
  a.heart = {{(heart_right + heart_left) / 2, hf.dome - rng.uniform(0.07, 0.1)},
             {(heart_left - heart_right) / 2 + 0.01, rng.uniform(0.11, 0.13)},
             rng.uniform(12.0, 24.0)};
  add_ribs(a, rng);
  add_clavicles_and_shoulders(a, rng);
  add_spine_and_airway(a, rng);
  add_vessels(a, rng);
  a.stomach_bubble = rng.chance(0.6);
  a.bubble = {{1.0 - hf.medial + rng.uniform(0.06, 0.1), hf.costophrenic + rng.uniform(0.02, 0.05)},
              {rng.uniform(0.03, 0.05), rng.uniform(0.018, 0.028)},
              0.0};
  return a;
}

// ---- per-image appearance and findings -------------------------------------------------

struct Exposure {
  double background, soft_tissue, lung_air, bone, vessel, airway, gradient_x, gradient_y;
};

Exposure sample_exposure(Rng& rng) {
  Exposure e;
  e.background = rng.uniform(0.02, 0.08);
  e.soft_tissue = rng.uniform(0.60, 0.74);
  e.lung_air = rng.uniform(0.36, 0.48);
  e.bone = rng.uniform(0.06, 0.1);
  e.vessel = rng.uniform(0.1, 0.16);
  e.airway = rng.uniform(0.08, 0.13);
  e.gradient_x = rng.uniform(-0.06, 0.06);
  e.gradient_y = rng.uniform(0.0, 0.1);  // the abdomen is denser than the neck
  return e;
}

Pose sample_pose(Rng& rng) {
  Pose p;
  p.cx = 0.5 + rng.uniform(-0.03, 0.03);
  p.cy = 0.5 + rng.uniform(-0.025, 0.025);
  p.scale = rng.uniform(0.95, 1.04);
  p.angle_rad = rng.uniform(-3.0, 3.0) * kPi / 180.0;
  return p;
}

// Class 1 ("No Lung Opacity / Not Normal"): diffuse changes that are not opacities.
struct DiffuseFindings {
  double heart_scale = 1.0;      // > 1: cardiomegaly
  double interstitial = 0.0;     // amplitude of a reticular texture over the lungs
  std::optional<Ellipse> effusion;  // fluid at one lung base, blunting the costophrenic angle
};

DiffuseFindings sample_diffuse_findings(Rng& rng, const Anatomy& a) {
  DiffuseFindings d;
  const bool cardiomegaly = rng.chance(0.4);
  const bool effusion = rng.chance(0.35);
  bool interstitial = rng.chance(0.6);
  if (!cardiomegaly && !effusion) interstitial = true;
  const double heart_scale = rng.uniform(1.2, 1.38);
  const double amplitude = rng.uniform(0.1, 0.18);
  const bool right = rng.chance(0.5);
  const LungFrame& f = a.frames[right ? 1 : 0];
  const Ellipse fluid{on_side(cv::Point2d(f.lateral + rng.uniform(0.06, 0.1), f.costophrenic - 0.01), right),
                      {rng.uniform(0.13, 0.19), rng.uniform(0.06, 0.11)},
                      right ? -rng.uniform(8.0, 18.0) : rng.uniform(8.0, 18.0)};
  if (cardiomegaly) d.heart_scale = heart_scale;
  if (interstitial) d.interstitial = amplitude;
  if (effusion) d.effusion = fluid;
  return d;
}

int draw_label(const ChestOptions& o, Rng& rng) {
  if (rng.chance(o.positive_fraction)) return kLungOpacity;
  return rng.chance(o.abnormal_fraction) ? kNotNormalNoOpacity : kNormal;
}

// How many opacities a positive image gets: 1 is the most common, like RSNA's.
int draw_opacity_count(const ChestOptions& o, Rng& rng) {
  double weight_sum = 0.0;
  for (int k = 1; k <= o.max_opacities; ++k) weight_sum += std::pow(0.5, k - 1);
  double u = rng.uniform() * weight_sum;
  for (int k = 1; k <= o.max_opacities; ++k) {
    u -= std::pow(0.5, k - 1);
    if (u < 0.0) return k;
  }
  return o.max_opacities;
}

// ---- opacities (full-size pixel coordinates) -------------------------------------------

struct OpacityCanvas {
  cv::Mat mask;      // 0/1 union
  cv::Mat strength;  // 0..255: contrast of the opacity covering each pixel
  std::vector<Box> boxes;
  double mean_semi_axis = 0.0;  // of the drawn opacities, in pixels (sets edge softness)
};

// A blob: a main ellipse and a few merged satellite ellipses centred inside it (so the
// union is connected), in pixel coordinates.
std::vector<Ellipse> sample_blob(Rng& rng, cv::Point2d center, double a, double b, double angle_deg,
                                 double satellite_reach) {
  std::vector<Ellipse> parts{{center, {a, b}, angle_deg}};
  const int satellites = 1 + static_cast<int>(rng.below(3));
  const double ca = std::cos(angle_deg * kPi / 180.0), sa = std::sin(angle_deg * kPi / 180.0);
  for (int i = 0; i < satellites; ++i) {
    const double phi = rng.uniform(0.0, 2.0 * kPi);
    const double r = rng.uniform(0.3, satellite_reach);
    const double lx = r * a * std::cos(phi), ly = r * b * std::sin(phi);
    const cv::Point2d c = center + cv::Point2d(ca * lx - sa * ly, sa * lx + ca * ly);
    parts.push_back({c, {a * rng.uniform(0.4, 0.7), b * rng.uniform(0.4, 0.7)}, rng.uniform(0.0, 180.0)});
  }
  return parts;
}

// Rasterises the blob into `roi`-sized local coordinates (value 1). Pixel-space ellipses use
// the same centre convention as Raster: continuous coordinate c is OpenCV's c - 0.5.
cv::Mat rasterise_blob(const std::vector<Ellipse>& parts, const cv::Rect& roi) {
  cv::Mat local = cv::Mat::zeros(roi.size(), CV_8U);
  for (const auto& e : parts) {
    const cv::Point c(static_cast<int>(std::lround((e.center.x - roi.x - 0.5) * kSubpixelScale)),
                      static_cast<int>(std::lround((e.center.y - roi.y - 0.5) * kSubpixelScale)));
    const cv::Size axes(static_cast<int>(std::lround(e.axes.width * kSubpixelScale)),
                        static_cast<int>(std::lround(e.axes.height * kSubpixelScale)));
    cv::ellipse(local, c, axes, e.angle_deg, 0, 360, cv::Scalar(1), cv::FILLED, cv::LINE_8,
                kSubpixelBits);
  }
  return local;
}

cv::Rect blob_bounds(const std::vector<Ellipse>& parts, const cv::Size& image) {
  cv::Rect r;
  for (const auto& e : parts) {
    const double reach = std::max(e.axes.width, e.axes.height) + 2.0;
    const cv::Rect part(static_cast<int>(std::floor(e.center.x - reach)),
                        static_cast<int>(std::floor(e.center.y - reach)),
                        static_cast<int>(std::ceil(2 * reach)) + 1,
                        static_cast<int>(std::ceil(2 * reach)) + 1);
    r = r.empty() ? part : (r | part);
  }
  return r & cv::Rect(cv::Point(0, 0), image);
}

// Keeps the largest 8-connected component: clipping to the lung can cut a blob in two.
cv::Mat largest_component(const cv::Mat& binary) {
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(binary, labels, stats, centroids, 8, CV_32S);
  int best = 0, best_area = 0;
  for (int i = 1; i < n; ++i) {
    if (stats.at<int>(i, cv::CC_STAT_AREA) > best_area) {
      best_area = stats.at<int>(i, cv::CC_STAT_AREA);
      best = i;
    }
  }
  cv::Mat out = cv::Mat::zeros(binary.size(), CV_8U);
  if (best > 0) out.setTo(1, labels == best);
  return out;
}

void add_opacity(OpacityCanvas& canvas, const cv::Mat& local, const cv::Rect& roi, Rng& rng) {
  const cv::Rect inner = cv::boundingRect(local);
  cv::Mat mask_roi = canvas.mask(roi);
  cv::bitwise_or(mask_roi, local, mask_roi);
  const int contrast = static_cast<int>(std::lround(255 * rng.uniform(0.55, 1.0)));
  cv::Mat strength_roi = canvas.strength(roi);
  cv::Mat raised = strength_roi.clone();
  raised.setTo(contrast, local);
  cv::max(strength_roi, raised, strength_roi);
  canvas.boxes.push_back({static_cast<double>(roi.x + inner.x), static_cast<double>(roi.y + inner.y),
                          static_cast<double>(inner.width), static_cast<double>(inner.height)});
}

bool keeps_clear_of(const std::vector<Box>& placed, const cv::Rect& candidate, int gap) {
  for (const auto& b : placed) {
    const cv::Rect other(static_cast<int>(b.x) - gap, static_cast<int>(b.y) - gap,
                         static_cast<int>(b.w) + 2 * gap, static_cast<int>(b.h) + 2 * gap);
    if ((other & candidate).area() > 0) return false;
  }
  return true;
}

bool inside(const cv::Mat& binary, cv::Point2d p) {
  const int x = static_cast<int>(std::floor(p.x)), y = static_cast<int>(std::floor(p.y));
  return x >= 0 && y >= 0 && x < binary.cols && y < binary.rows && binary.at<uchar>(y, x) != 0;
}

// Free mode: one opacity inside a lung, clear of the others. Returns false when this try
// failed (the caller tries again); `shrink` lets later tries use smaller blobs.
bool try_place_opacity(OpacityCanvas& canvas, const cv::Mat& lung_mask,
                       const std::array<cv::Rect, 2>& lung_bounds, double shrink, Rng& rng) {
  const int size = lung_mask.cols;
  const cv::Rect& bounds = lung_bounds[rng.below(2)];
  const cv::Point2d center(bounds.x + rng.uniform() * bounds.width,
                           bounds.y + rng.uniform() * bounds.height);
  const double a = size * rng.uniform(0.035, 0.095) * shrink;
  const double b = a * rng.uniform(0.9, 1.7);  // pneumonia boxes tend to be taller than wide
  const double angle = rng.uniform(-30.0, 30.0);
  const auto parts = sample_blob(rng, center, a, b, angle, 0.75);
  // The centre must lie well inside the lung, so that clipping leaves most of the blob.
  for (const cv::Point2d d : {cv::Point2d(0, 0), cv::Point2d(0.35 * a, 0), cv::Point2d(-0.35 * a, 0),
                              cv::Point2d(0, 0.35 * b), cv::Point2d(0, -0.35 * b)}) {
    if (!inside(lung_mask, center + d)) return false;
  }
  const cv::Rect roi = blob_bounds(parts, lung_mask.size());
  cv::Mat local = rasterise_blob(parts, roi);
  cv::bitwise_and(local, lung_mask(roi), local);
  local = largest_component(local);
  const cv::Rect inner = cv::boundingRect(local);
  if (cv::countNonZero(local) < 0.3 * kPi * a * b) return false;
  if (!keeps_clear_of(canvas.boxes, inner + roi.tl(), 3)) return false;
  add_opacity(canvas, local, roi, rng);
  canvas.mean_semi_axis += std::sqrt(a * b);
  return true;
}

void place_free_opacities(OpacityCanvas& canvas, int count, const cv::Mat& lung_mask,
                          const std::array<cv::Rect, 2>& lung_bounds, Rng& rng) {
  constexpr int kTries = 120;
  int placed = 0;
  for (int t = 0; t < kTries && placed < count; ++t) {
    const double shrink = std::pow(0.75, t / 30);  // crowded lungs: smaller blobs
    if (try_place_opacity(canvas, lung_mask, lung_bounds, shrink, rng)) ++placed;
  }
}

cv::Rect clip_box(const Box& box, int size, std::size_t index) {
  if (!(box.w > 0.0) || !(box.h > 0.0)) {
    throw std::invalid_argument("generate_chest_with_boxes: box " + std::to_string(index) +
                                " has width or height <= 0 (w=" + std::to_string(box.w) +
                                ", h=" + std::to_string(box.h) + ")");
  }
  const int x0 = static_cast<int>(std::floor(box.x)), y0 = static_cast<int>(std::floor(box.y));
  const int x1 = static_cast<int>(std::ceil(box.right())), y1 = static_cast<int>(std::ceil(box.bottom()));
  const cv::Rect r = cv::Rect(x0, y0, x1 - x0, y1 - y0) & cv::Rect(0, 0, size, size);
  if (r.empty()) {
    throw std::invalid_argument("generate_chest_with_boxes: box " + std::to_string(index) +
                                " lies outside the " + std::to_string(size) + " x " +
                                std::to_string(size) + " image (boxes are in output pixels)");
  }
  return r;
}

// Forced mode: a blob whose main ellipse nearly touches all four sides of the box, clipped
// to the box, so the drawn opacity's own bounding box is close to the given one.
void place_forced_opacity(OpacityCanvas& canvas, const Box& box, const cv::Rect& roi, Rng& rng) {
  const double cx = std::clamp(box.x + box.w / 2, 0.0, static_cast<double>(canvas.mask.cols));
  const double cy = std::clamp(box.y + box.h / 2, 0.0, static_cast<double>(canvas.mask.rows));
  const double a = box.w / 2 * rng.uniform(0.93, 0.99);
  const double b = box.h / 2 * rng.uniform(0.93, 0.99);
  const auto parts = sample_blob(rng, {cx, cy}, a, b, 0.0, 0.5);
  cv::Mat local = rasterise_blob(parts, roi);
  if (cv::countNonZero(local) == 0) local.setTo(1);  // a box thinner than a pixel
  add_opacity(canvas, local, roi, rng);
  canvas.mean_semi_axis += std::sqrt(a * b);
}

// ---- rendering -------------------------------------------------------------------------

struct Layers {
  cv::Mat body, lung, heart, airway, bone, vessel;
  // Smooth "thickness" of the body and of each lung: rays through the middle cross more
  // tissue (or air) than rays near an edge.
  cv::Mat body_depth, lung_depth;
};

cv::Mat blank(int n) { return cv::Mat::zeros(n, n, CV_8U); }

void blur(cv::Mat& layer, double sigma) {
  // Below half a pixel the anti-aliased drawing is soft enough.
  if (sigma >= 0.5) cv::GaussianBlur(layer, layer, cv::Size(0, 0), sigma, sigma, cv::BORDER_REPLICATE);
}

// A heavily blurred copy, computed at a quarter of the resolution (the blur hides it).
cv::Mat depth_of(const cv::Mat& layer, double sigma_fraction) {
  const int m = std::max(8, layer.cols / 4);
  cv::Mat small, out;
  cv::resize(layer, small, cv::Size(m, m), 0, 0, cv::INTER_AREA);
  blur(small, sigma_fraction * m);
  cv::resize(small, out, layer.size(), 0, 0, cv::INTER_LINEAR_EXACT);
  return out;
}

Layers render_layers(const Anatomy& a, const DiffuseFindings& d, const Raster& r, int n) {
  Layers l{blank(n), blank(n), blank(n), blank(n), blank(n), blank(n), {}, {}};
  fill_polygon(l.body, r, a.body, 255, cv::LINE_AA);
  for (const auto& arm : a.arms) fill_ellipse(l.body, r, arm, 255, cv::LINE_AA);
  for (const auto& lung : a.lungs) fill_polygon(l.lung, r, lung, 255, cv::LINE_AA);
  Ellipse heart = a.heart;
  heart.axes *= d.heart_scale;
  heart.center.y -= (d.heart_scale - 1.0) * 0.5 * a.heart.axes.height;  // grows up and out
  fill_ellipse(l.heart, r, heart, 255, cv::LINE_AA);
  if (d.effusion) fill_ellipse(l.heart, r, *d.effusion, 255, cv::LINE_AA);
  for (const auto& s : a.airway) draw_stroke(l.airway, r, s, 255, cv::LINE_AA);
  if (a.stomach_bubble) fill_ellipse(l.airway, r, a.bubble, 150, cv::LINE_AA);

  // Bones: the spine (vertebral bodies, darker discs, pedicles), ribs with brighter cortex.
  const Path spine = {{0.5 - a.spine_half_width, -0.1}, {0.5 + a.spine_half_width, -0.1},
                      {0.5 + a.spine_half_width, 1.1}, {0.5 - a.spine_half_width, 1.1}};
  fill_polygon(l.bone, r, spine, 150, cv::LINE_AA);
  // Bones are drawn without anti-aliasing (several times cheaper for ~100 polygons) and
  // blurred by at least 0.6 px afterwards, which smooths their edges as well.
  for (const auto& s : a.discs) draw_stroke(l.bone, r, s, 90, cv::LINE_8);
  for (const auto& p : a.pedicles) fill_ellipse(l.bone, r, p, 220, cv::LINE_8);
  for (const auto& s : a.anterior_ribs) draw_stroke(l.bone, r, s, 110, cv::LINE_8);
  const bool show_marrow = r.length(0.02) >= 4.0;  // invisible in small images
  for (const auto& s : a.posterior_ribs) {
    draw_stroke(l.bone, r, s, 255, cv::LINE_8);
    if (show_marrow) draw_stroke(l.bone, r, {s.path, s.width * 0.45}, 185, cv::LINE_8);  // less dense than cortex
  }
  for (const auto& s : a.clavicles) draw_stroke(l.bone, r, s, 255, cv::LINE_8);
  for (const auto& h : a.humeral_heads) fill_ellipse(l.bone, r, h, 200, cv::LINE_8);
  for (const auto& h : a.hila) fill_ellipse(l.heart, r, h, 100, cv::LINE_AA);
  for (const auto& s : a.vessels) draw_vessel(l.vessel, r, s, 255);

  // Skin, pleura and airway walls are sharp edges (anti-aliasing suffices); the heart's and
  // diaphragm's silhouettes and bones are a little soft.
  blur(l.lung, 0.005 * n);
  blur(l.heart, 0.01 * n);
  blur(l.bone, std::max(0.6, 0.0035 * n));
  l.body_depth = depth_of(l.body, 0.06);
  l.lung_depth = depth_of(l.lung, 0.05);
  return l;
}

// Smooth random texture in [0, 255]: a coarse grid of random values, cubic-upsampled.
cv::Mat smooth_noise(Rng& rng, int cells, int n) {
  cv::Mat grid(cells, cells, CV_8U);
  for (int y = 0; y < cells; ++y) {
    for (int x = 0; x < cells; ++x) grid.at<uchar>(y, x) = static_cast<uchar>(rng.below(256));
  }
  cv::Mat out;
  cv::resize(grid, out, cv::Size(n, n), 0, 0, cv::INTER_CUBIC);
  return out;
}

// Opacities at working resolution: area-downsampled strength map, edges softened.
cv::Mat soft_opacity(const OpacityCanvas& canvas, int n, Rng& rng) {
  cv::Mat soft;
  if (canvas.strength.cols == n) {
    soft = canvas.strength.clone();
  } else {
    cv::resize(canvas.strength, soft, cv::Size(n, n), 0, 0, cv::INTER_AREA);
  }
  const double semi_axis = canvas.mean_semi_axis / std::max<std::size_t>(1, canvas.boxes.size());
  blur(soft, rng.uniform(0.15, 0.35) * semi_axis * n / canvas.strength.cols);
  return soft;
}

struct Findings {
  DiffuseFindings diffuse;
  cv::Mat opacity;      // working resolution, 0..255 (contrast included), or empty
  cv::Mat patchiness;   // texture inside opacities
  cv::Mat reticulation; // interstitial texture, or empty
};

// Mixes the layers into a density image (16-bit, working resolution). Densities add up
// along the ray: air in the lungs removes density, unless the heart, an effusion or an
// opacity (fluid in the airspaces) takes its place.
cv::Mat composite(const Layers& l, const Findings& f, const Exposure& e, const Pose& pose,
                  const Anatomy& a, int n) {
  const double lung_top = pose.map_y(std::min(a.frames[0].top, a.frames[1].top));
  const double lung_bottom = pose.map_y(std::max(a.frames[0].costophrenic, a.frames[1].costophrenic));
  // Absent optional layers read as zeros, which keeps the pixel loop free of branches.
  const cv::Mat zeros = blank(n);
  const cv::Mat& opacity = f.opacity.empty() ? zeros : f.opacity;
  const cv::Mat& patchiness = f.patchiness.empty() ? zeros : f.patchiness;
  const cv::Mat& reticulation = f.reticulation.empty() ? zeros : f.reticulation;
  const float interstitial = static_cast<float>(f.diffuse.interstitial);
  const float background = static_cast<float>(e.background), soft = static_cast<float>(e.soft_tissue);
  const float bone_density = static_cast<float>(e.bone), vessel_density = static_cast<float>(e.vessel);
  const float airway_density = static_cast<float>(e.airway);
  std::vector<float> column_gradient(n);
  for (int x = 0; x < n; ++x) column_gradient[x] = static_cast<float>(e.gradient_x * ((x + 0.5) / n - 0.5));
  constexpr float k = 1.0f / 255.0f;
  cv::Mat out(n, n, CV_16U);
  for (int y = 0; y < n; ++y) {
    const double v = (y + 0.5) / n;
    // Lungs look less dark at the apex (shoulder soft tissue) and the bases.
    const double u = clamp01((v - lung_top) / (lung_bottom - lung_top));
    const float air = static_cast<float>(e.lung_air * (0.7 + 0.3 * std::sqrt(std::sin(kPi * u))));
    const float row_gradient = static_cast<float>(e.gradient_y * (v - 0.5));
    const uchar *body = l.body.ptr(y), *lung = l.lung.ptr(y), *heart = l.heart.ptr(y),
                *airway = l.airway.ptr(y), *bone = l.bone.ptr(y), *vessel = l.vessel.ptr(y),
                *body_depth = l.body_depth.ptr(y), *lung_depth = l.lung_depth.ptr(y),
                *op = opacity.ptr(y), *patch = patchiness.ptr(y), *ret = reticulation.ptr(y);
    auto* dst = out.ptr<std::uint16_t>(y);
    for (int x = 0; x < n; ++x) {
      const float b = body[x] * k, lg = lung[x] * k;
      const float aerated = lg * (1.0f - 0.85f * k * heart[x]);
      const float fill = op[x] * k * (0.6f + 0.4f * k * patch[x]);
      const float tissue = soft * (0.55f + 0.45f * k * body_depth[x]) + column_gradient[x] + row_gradient;
      float d = background * (1.0f - b) + b * tissue;
      d -= air * (0.4f + 0.6f * k * lung_depth[x]) * aerated * (1.0f - fill);
      d += 0.12f * fill * (1.0f - lg);  // forced boxes may reach beyond the lungs
      d -= airway_density * k * airway[x] * (1.0f - lg);
      d += bone_density * k * bone[x] * (0.6f + 0.4f * lg);
      d += vessel_density * k * vessel[x] * aerated;
      d += interstitial * (k * ret[x] - 0.5f) * aerated;
      dst[x] = static_cast<std::uint16_t>(std::min(std::max(d, 0.0f), 1.0f) * 65535.0f + 0.5f);
    }
  }
  return out;
}

// Box-Muller with table look-ups: a pair of normals from a 14-bit radius index and a
// 12-bit angle index, four normals per 64-bit draw. Quantising the uniforms costs nothing
// visible in pixel noise (tails are cut at 4.6 sigma) and makes noise ~10x cheaper.
class NormalTable {
 public:
  static const NormalTable& get() {
    static const NormalTable table;
    return table;
  }
  // Writes 4 standard normals drawn from one 64-bit number.
  void four(std::uint64_t bits, float* z) const {
    for (int pair = 0; pair < 2; ++pair, bits >>= kRadiusBits + kAngleBits) {
      const float r = radius_[bits & (kRadiusSize - 1)];
      const std::size_t a = (bits >> kRadiusBits) & (kAngleSize - 1);
      z[2 * pair] = r * cos_[a];
      z[2 * pair + 1] = r * sin_[a];
    }
  }

 private:
  static constexpr int kRadiusBits = 14, kAngleBits = 12;
  static constexpr std::size_t kRadiusSize = std::size_t{1} << kRadiusBits;
  static constexpr std::size_t kAngleSize = std::size_t{1} << kAngleBits;
  NormalTable() : radius_(kRadiusSize), cos_(kAngleSize), sin_(kAngleSize) {
    for (std::size_t i = 0; i < kRadiusSize; ++i) {
      const double u = (i + 0.5) / kRadiusSize;  // never 0
      radius_[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u)));
    }
    for (std::size_t i = 0; i < kAngleSize; ++i) {
      const double theta = 2.0 * kPi * (i + 0.5) / kAngleSize;
      cos_[i] = static_cast<float>(std::cos(theta));
      sin_[i] = static_cast<float>(std::sin(theta));
    }
  }
  std::vector<float> radius_, cos_, sin_;
};

// Upsamples the density to the output size and adds per-pixel Gaussian noise.
cv::Mat finish(const cv::Mat& density, int size, double noise, Rng& rng) {
  cv::Mat full = density;
  if (density.cols != size) cv::resize(density, full, cv::Size(size, size), 0, 0, cv::INTER_LINEAR_EXACT);
  cv::Mat out(size, size, CV_8U);
  const std::size_t count = static_cast<std::size_t>(size) * size;
  const auto* src = full.ptr<std::uint16_t>(0);
  auto* dst = out.ptr<uchar>(0);
  const float scale = 255.0f / 65535.0f;
  const float sigma = static_cast<float>(noise * 255.0);
  const NormalTable& normals = NormalTable::get();
  float z[4];
  for (std::size_t i = 0; i < count; i += 4) {
    normals.four(rng.next(), z);
    for (std::size_t j = 0; j < 4 && i + j < count; ++j) {
      const int q = static_cast<int>(src[i + j] * scale + sigma * z[j] + 0.5f + 256.0f) - 256;
      dst[i + j] = static_cast<uchar>(std::clamp(q, 0, 255));
    }
  }
  return out;
}

cv::Mat full_lung_mask(const Anatomy& a, const Pose& pose, int size,
                       std::array<cv::Rect, 2>& bounds) {
  const Raster r{pose, static_cast<double>(size)};
  cv::Mat mask = blank(size);
  for (int i = 0; i < 2; ++i) {
    fill_polygon(mask, r, a.lungs[i], 1, cv::LINE_8);
    std::vector<cv::Point> pts;
    for (const auto& p : a.lungs[i]) pts.push_back(r.point(p) / kSubpixelScale);
    bounds[i] = cv::boundingRect(pts) & cv::Rect(0, 0, size, size);
  }
  return mask;
}

struct Request {
  std::optional<std::vector<Box>> forced_boxes;
  std::optional<int> forced_label;
};

ChestImage generate(const ChestOptions& o, std::uint64_t seed, std::uint64_t index,
                    std::optional<std::uint64_t> patient, const Request& request) {
  validate(o);
  Rng rng(mix_seed({seed, index, kFindingsStream}));
  ChestImage out;
  if (request.forced_boxes) {
    out.label = request.forced_label ? *request.forced_label
                : request.forced_boxes->empty()
                    ? (rng.chance(o.abnormal_fraction) ? kNotNormalNoOpacity : kNormal)
                    : kLungOpacity;
  } else {
    out.label = draw_label(o, rng);
  }
  Rng anatomy_rng(mix_seed({seed, patient.value_or(index), kAnatomyStream}));
  const Anatomy anatomy = sample_anatomy(anatomy_rng);
  const Pose pose = sample_pose(rng);
  const Exposure exposure = sample_exposure(rng);
  Findings findings;
  if (out.label == kNotNormalNoOpacity) findings.diffuse = sample_diffuse_findings(rng, anatomy);

  const int size = o.size;
  const int n = std::min(size, kMaxWorkingSize);
  std::array<cv::Rect, 2> lung_bounds;
  out.lung_mask = full_lung_mask(anatomy, pose, size, lung_bounds);

  OpacityCanvas canvas{blank(size), blank(size), {}, 0.0};
  if (request.forced_boxes) {
    const auto& boxes = *request.forced_boxes;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      place_forced_opacity(canvas, boxes[i], clip_box(boxes[i], size, i), rng);
    }
  } else if (out.label == kLungOpacity) {
    place_free_opacities(canvas, draw_opacity_count(o, rng), out.lung_mask, lung_bounds, rng);
  }
  if (!canvas.boxes.empty()) {
    findings.opacity = soft_opacity(canvas, n, rng);
    findings.patchiness = smooth_noise(rng, 14, n);
  }
  if (findings.diffuse.interstitial > 0.0) findings.reticulation = smooth_noise(rng, 42, n);

  const Layers layers = render_layers(anatomy, findings.diffuse, Raster{pose, static_cast<double>(n)}, n);
  out.image = finish(composite(layers, findings, exposure, pose, anatomy, n), size, o.noise, rng);
  out.mask = canvas.mask;
  out.boxes = std::move(canvas.boxes);
  return out;
}

}  // namespace

const std::vector<std::string>& chest_class_names() {
  static const std::vector<std::string> names = {"Normal", "No Lung Opacity / Not Normal",
                                                 "Lung Opacity"};
  return names;
}

void validate(const ChestOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("ChestOptions: " + what); };
  if (o.size < 32 || o.size > 8192) fail("size must be in [32, 8192], got " + std::to_string(o.size));
  if (!(o.positive_fraction >= 0.0 && o.positive_fraction <= 1.0)) {
    fail("positive_fraction must be in [0, 1], got " + std::to_string(o.positive_fraction));
  }
  if (!(o.abnormal_fraction >= 0.0 && o.abnormal_fraction <= 1.0)) {
    fail("abnormal_fraction must be in [0, 1], got " + std::to_string(o.abnormal_fraction));
  }
  if (o.max_opacities < 1 || o.max_opacities > 16) {
    fail("max_opacities must be in [1, 16], got " + std::to_string(o.max_opacities));
  }
  if (!(o.noise >= 0.0 && o.noise <= 0.5)) fail("noise must be in [0, 0.5], got " + std::to_string(o.noise));
}

int chest_label(const ChestOptions& options, std::uint64_t seed, std::uint64_t index) {
  validate(options);
  Rng rng(mix_seed({seed, index, kFindingsStream}));
  return draw_label(options, rng);
}

ChestImage generate_chest(const ChestOptions& options, std::uint64_t seed, std::uint64_t index,
                          std::optional<std::uint64_t> patient) {
  return generate(options, seed, index, patient, Request{});
}

ChestImage generate_chest_with_boxes(const ChestOptions& options, std::uint64_t seed,
                                     std::uint64_t index, const std::vector<Box>& boxes,
                                     std::optional<int> label, std::optional<std::uint64_t> patient) {
  if (label) {
    const bool ok = boxes.empty() ? (*label == kNormal || *label == kNotNormalNoOpacity)
                                  : *label == kLungOpacity;
    if (!ok) {
      throw std::invalid_argument("generate_chest_with_boxes: label " + std::to_string(*label) +
                                  (boxes.empty() ? " needs boxes (only 0 or 1 go without)"
                                                 : " cannot have boxes (only 2 = Lung Opacity can)"));
    }
  }
  return generate(options, seed, index, patient, Request{boxes, label});
}

}  // namespace chestlab::synth

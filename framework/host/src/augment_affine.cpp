// Geometry of the `affine` augmentation: the matrix of one draw, and its application to
// image (bilinear), mask (nearest neighbour) and boxes (edge points).
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "chestlab/host/augment.h"

namespace chestlab {

namespace {

constexpr double kPi = 3.14159265358979323846;

// OpenCV puts pixel (i, j)'s centre at (j, i); our continuous coordinates put it at
// (j + 0.5, i + 0.5). Same linear part, translation adjusted: q' = L (q + 0.5) + t - 0.5.
cv::Mat opencv_matrix(const AffineMatrix& m) {
  cv::Mat out(2, 3, CV_64F);
  out.at<double>(0, 0) = m[0];
  out.at<double>(0, 1) = m[1];
  out.at<double>(0, 2) = m[2] + 0.5 * (m[0] + m[1]) - 0.5;
  out.at<double>(1, 0) = m[3];
  out.at<double>(1, 1) = m[4];
  out.at<double>(1, 2) = m[5] + 0.5 * (m[3] + m[4]) - 0.5;
  return out;
}

// Each H x W plane of a contiguous float32 CPU tensor [..., H, W] warped into a new
// tensor of the same shape. cv::Mat headers wrap both tensors' memory: no copies.
torch::Tensor warp_planes(const torch::Tensor& input, const cv::Mat& matrix, int interpolation,
                          int border, double border_value) {
  const torch::Tensor src = input.to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor dst = torch::empty_like(src);
  const int height = static_cast<int>(src.size(-2));
  const int width = static_cast<int>(src.size(-1));
  const std::int64_t plane = static_cast<std::int64_t>(height) * width;
  for (std::int64_t offset = 0; offset < src.numel(); offset += plane) {
    const cv::Mat from(height, width, CV_32F, const_cast<float*>(src.data_ptr<float>()) + offset);
    cv::Mat to(height, width, CV_32F, dst.data_ptr<float>() + offset);
    // `to` already has the right size and type, so OpenCV writes into the tensor.
    cv::warpAffine(from, to, matrix, to.size(), interpolation, border, cv::Scalar::all(border_value));
  }
  return dst;
}

struct Point {
  double x, y;
};

std::vector<Point> box_points(double x, double y, double w, double h, BoxWarp method) {
  if (method == BoxWarp::Corners) return {{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}};
  const double w1 = w / 3, w2 = 2 * w / 3, h1 = h / 3, h2 = 2 * h / 3;
  return {{x + w1, y},     {x + w2, y},     {x + w, y + h1}, {x + w, y + h2},
          {x + w2, y + h}, {x + w1, y + h}, {x, y + h2},     {x, y + h1}};
}

}  // namespace

AffineMatrix affine_about_centre(const AffineDraw& draw, std::int64_t height, std::int64_t width) {
  const double angle = draw.rotation_deg * kPi / 180.0;
  const double c = std::cos(angle), s = std::sin(angle);
  const double t = std::tan(draw.shear_deg * kPi / 180.0);
  // L = scale * R(angle) * [[1, t], [0, 1]]
  const double l00 = draw.scale * c, l01 = draw.scale * (c * t - s);
  const double l10 = draw.scale * s, l11 = draw.scale * (s * t + c);
  const double cx = 0.5 * static_cast<double>(width), cy = 0.5 * static_cast<double>(height);
  // p' = L (p - centre) + centre + shift
  return {l00, l01, cx + draw.shift_x - l00 * cx - l01 * cy,
          l10, l11, cy + draw.shift_y - l10 * cx - l11 * cy};
}

torch::Tensor warp_boxes(const torch::Tensor& boxes, const AffineMatrix& m, std::int64_t height,
                         std::int64_t width, BoxWarp method) {
  const torch::Tensor in = boxes.to(torch::kCPU, torch::kFloat32).contiguous().reshape({-1, 4});
  const auto rows = in.accessor<float, 2>();
  const double max_x = static_cast<double>(width), max_y = static_cast<double>(height);
  std::vector<float> kept;
  for (std::int64_t i = 0; i < in.size(0); ++i) {
    double x0 = max_x, y0 = max_y, x1 = 0, y1 = 0;
    for (const Point& p : box_points(rows[i][0], rows[i][1], rows[i][2], rows[i][3], method)) {
      const double x = m[0] * p.x + m[1] * p.y + m[2];
      const double y = m[3] * p.x + m[4] * p.y + m[5];
      x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
    }
    x0 = std::clamp(x0, 0.0, max_x), x1 = std::clamp(x1, 0.0, max_x);
    y0 = std::clamp(y0, 0.0, max_y), y1 = std::clamp(y1, 0.0, max_y);
    // Also drops boxes moved entirely outside (x1 <= x0 after clipping).
    if (x1 <= x0 || y1 <= y0 || (x1 - x0) * (y1 - y0) < 1.0) continue;
    kept.insert(kept.end(), {static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1 - x0),
                             static_cast<float>(y1 - y0)});
  }
  const auto count = static_cast<std::int64_t>(kept.size() / 4);
  return torch::tensor(kept, torch::kFloat32).reshape({count, 4});
}

void warp_sample(Sample& sample, const AffineMatrix& m, BorderFill fill, double fill_value) {
  const std::int64_t height = sample.image.size(-2), width = sample.image.size(-1);
  const cv::Mat matrix = opencv_matrix(m);
  const int border = fill == BorderFill::Nearest ? cv::BORDER_REPLICATE : cv::BORDER_CONSTANT;
  sample.image = warp_planes(sample.image, matrix, cv::INTER_LINEAR, border, fill_value);
  if (sample.mask.defined()) {
    // Nearest neighbour keeps labels 0/1; the comparison guards against any other value
    // a caller's mask may hold. Outside the image a constant-filled mask is background.
    const torch::Tensor warped = warp_planes(sample.mask, matrix, cv::INTER_NEAREST, border, 0.0);
    sample.mask = (warped > 0.5).to(torch::kFloat32);
  }
  if (sample.boxes.defined()) sample.boxes = warp_boxes(sample.boxes, m, height, width, BoxWarp::EdgePoints);
}

}  // namespace chestlab

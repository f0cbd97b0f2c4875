#include "box_mask.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace chestlab::rsna_pneumonia {

namespace {

// First pixel index whose centre (i + 0.5) is >= edge.
int first_centre_at_or_after(double edge) { return static_cast<int>(std::ceil(edge - 0.5)); }

}  // namespace

cv::Mat boxes_to_mask(const std::vector<Box>& boxes, int rows, int cols) {
  cv::Mat mask = cv::Mat::zeros(rows, cols, CV_8UC1);
  for (const Box& b : boxes) {
    const int x0 = std::max(0, first_centre_at_or_after(b.x));
    const int x1 = std::min(cols, first_centre_at_or_after(b.right()));
    const int y0 = std::max(0, first_centre_at_or_after(b.y));
    const int y1 = std::min(rows, first_centre_at_or_after(b.bottom()));
    if (x1 > x0 && y1 > y0) mask(cv::Rect(x0, y0, x1 - x0, y1 - y0)).setTo(1);
  }
  return mask;
}

cv::Mat resize_binary_mask(const cv::Mat& mask01, int rows, int cols) {
  cv::Mat as_float, resized, out;
  mask01.convertTo(as_float, CV_32F);
  const bool shrinking = rows <= mask01.rows && cols <= mask01.cols;
  cv::resize(as_float, resized, cv::Size(cols, rows), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  // Exactly half-covered pixels come out as 0.5 give or take float rounding of the sums;
  // the tolerance keeps them foreground, as their centres lie on the box edge.
  cv::compare(resized, 0.5 - 1e-5, out, cv::CMP_GE);  // 255 where foreground
  out /= 255;
  return out;
}

std::vector<Box> scale_boxes(const std::vector<Box>& boxes, double sx, double sy) {
  std::vector<Box> out;
  out.reserve(boxes.size());
  for (const Box& b : boxes) out.push_back({b.x * sx, b.y * sy, b.w * sx, b.h * sy});
  return out;
}

}  // namespace chestlab::rsna_pneumonia

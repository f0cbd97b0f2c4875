// Boxes as plain data (no LibTorch): the labels, metrics and submissions of box tasks.
// An axis-aligned box in image pixels: top-left corner (x, y), width w, height h, as the
// RSNA label and submission files write them. Torch-free, header-only.
#pragma once

#include <algorithm>

namespace chestlab {

struct Box {
  double x = 0.0;
  double y = 0.0;
  double w = 0.0;
  double h = 0.0;

  double right() const { return x + w; }
  double bottom() const { return y + h; }
  double area() const { return w * h; }
};

// A predicted box with its confidence in [0, 1].
struct ScoredBox {
  double score = 0.0;
  Box box;
};

inline bool operator==(const Box& a, const Box& b) {
  return a.x == b.x && a.y == b.y && a.w == b.w && a.h == b.h;
}
inline bool operator!=(const Box& a, const Box& b) { return !(a == b); }

// Intersection over union with continuous coordinates (no "+1 pixel" convention), which is
// what the competition's metric computes. Boxes that do not overlap, and the degenerate
// case of two empty boxes, give 0.
inline double iou(const Box& a, const Box& b) {
  const double overlap_w = std::min(a.right(), b.right()) - std::max(a.x, b.x);
  const double overlap_h = std::min(a.bottom(), b.bottom()) - std::max(a.y, b.y);
  if (overlap_w <= 0.0 || overlap_h <= 0.0) return 0.0;
  const double intersection = overlap_w * overlap_h;
  const double union_area = a.area() + b.area() - intersection;
  return union_area > 0.0 ? intersection / union_area : 0.0;
}

}  // namespace chestlab

// Masks from RSNA boxes (torch-free): the opacity "mask" of a box-labelled image is the
// union of its boxes, drawn at the source resolution and then resized with the image.
#pragma once

#include <opencv2/core.hpp>

#include <vector>

#include "chestlab/box.h"

namespace chestlab::rsna_pneumonia {

// CV_8UC1 rows x cols, 1 on every pixel whose centre lies inside a box (x <= c + 0.5 < x + w,
// likewise for rows), 0 elsewhere. With the integer boxes of the RSNA tables that is exactly
// the pixels [x, x + w) x [y, y + h). Boxes may reach outside the image (clipped).
cv::Mat boxes_to_mask(const std::vector<Box>& boxes, int rows, int cols);

// Resizes a 0/1 mask to rows x cols the way the image is resized: area averaging (the share
// of each target pixel that the mask covers), then >= 0.5. So a target pixel is foreground
// when at least half of it was, and every foreground pixel's centre lies inside (or on the
// edge of) the box scaled like the image. Growing uses bilinear weights, then >= 0.5.
cv::Mat resize_binary_mask(const cv::Mat& mask01, int rows, int cols);

// Boxes scaled by sx horizontally and sy vertically.
std::vector<Box> scale_boxes(const std::vector<Box>& boxes, double sx, double sy);

}  // namespace chestlab::rsna_pneumonia

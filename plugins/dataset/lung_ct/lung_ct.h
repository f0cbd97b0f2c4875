// lung_ct: a folder of 2D CT slices and a folder of lung masks with the same file names
// (the Kaggle "Finding and Measuring Lungs in CT Data" layout: 2d_images/ID_0000_Z_0142.tif and
// 2d_masks/ID_0000_Z_0142.tif). TIFF through libtiff (8/16-bit integers, signed or not, and
// floats) or PNG through OpenCV. Images: resized (Lanczos by default), then normalised to
// [0, 1] by their own min and max or by a HU window. Masks: 0/1 or 0/255, resized
// nearest-neighbour. Samples are in file-name order, so a holdout split "in file order"
// is the order of the sorted names.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "chestlab/sdk.h"

namespace chestlab::lung_ct {

enum class Interpolation {
  Lanczos4,  // cv::INTER_LANCZOS4 in one step, shrinking too (the course notebook)
  Area,      // area averaging where an axis shrinks, Lanczos where it grows (no aliasing)
};

struct LungCtOptions {
  std::string images_dir;
  std::string masks_dir;
  int image_size = 128;
  std::vector<double> window;  // empty: per-image min-max; {center, width}: HU window
  Interpolation interpolation = Interpolation::Lanczos4;
  std::size_t limit = 0;       // 0: every pair
};

// One image file and its mask file.
struct FilePair {
  std::string name;  // file name, identical in both folders
  std::string image;
  std::string mask;
};

// Pairs the image files (.tif, .tiff, .png, any case) of two folders by file name, sorted by
// name. Throws DataError naming a missing folder, an empty one, or every file without a
// partner (both directions).
std::vector<FilePair> pair_files(const std::string& images_dir, const std::string& masks_dir);

// Decodes one image file (TIFF, recognised by its content, via libtiff; otherwise OpenCV) as single-channel, any depth.
// Colour PNGs become grey. Throws DataError naming the file.
cv::Mat read_slice(const std::string& path);

// A mask (any integer or float depth) with values 0/1 or 0/255 -> CV_8U 0/1. Throws
// DataError naming `path` for any other value.
cv::Mat binary_mask(const cv::Mat& mask, const std::string& path);

class LungCtDataset : public Dataset {
 public:
  explicit LungCtDataset(LungCtOptions options);

  std::size_t size() const override { return pairs_.size(); }
  SampleInfo info(std::size_t index) const override;
  Sample get(std::size_t index) const override;
  std::vector<std::string> class_names() const override { return {"lung"}; }

  const std::vector<FilePair>& pairs() const { return pairs_; }

 private:
  const FilePair& pair(std::size_t index) const;

  LungCtOptions options_;
  std::vector<FilePair> pairs_;
};

}  // namespace chestlab::lung_ct

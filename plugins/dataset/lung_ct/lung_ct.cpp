#include "lung_ct.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "chestlab/imaging/image_ops.h"
#include "chestlab/imaging/tiff.h"

namespace chestlab::lung_ct {

namespace fs = std::filesystem;

namespace {

bool is_slice_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".tif" || ext == ".tiff" || ext == ".png";
}

// File name -> full path of every slice file of a folder.
std::map<std::string, std::string> list_slices(const std::string& dir, const char* what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir, fmt::format("the {} folder does not exist", what));
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && is_slice_file(entry.path()))
      files.emplace(entry.path().filename().string(), entry.path().string());
  }
  if (ec) throw DataError(dir, "cannot list the folder: " + ec.message());
  if (files.empty()) throw DataError(dir, fmt::format("the {} folder has no .tif, .tiff or .png files", what));
  return files;
}

std::string list_names(const std::vector<std::string>& names) {
  constexpr std::size_t kShown = 20;
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < kShown; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > kShown) text += fmt::format(" and {} more", names.size() - kShown);
  return text;
}

// "ID_0002_Z_0162.tif" -> "ID_0002" (the scan: slices of one scan share a fold); a name
// without "_Z_" is its own group.
std::string group_of(const std::string& name) {
  const std::string stem = fs::path(name).stem().string();
  const auto z = stem.find("_Z_");
  return z == std::string::npos ? stem : stem.substr(0, z);
}

torch::Tensor to_tensor(const cv::Mat& m) {
  CV_Assert(m.type() == CV_32F && m.isContinuous());
  return torch::from_blob(const_cast<float*>(m.ptr<float>()), {1, m.rows, m.cols}, torch::kFloat32).clone();
}

}  // namespace

std::vector<FilePair> pair_files(const std::string& images_dir, const std::string& masks_dir) {
  const auto images = list_slices(images_dir, "images");
  const auto masks = list_slices(masks_dir, "masks");
  std::vector<FilePair> pairs;
  std::vector<std::string> no_mask, no_image;
  for (const auto& [name, path] : images) {
    const auto m = masks.find(name);
    if (m == masks.end()) {
      no_mask.push_back(name);
    } else {
      pairs.push_back({name, path, m->second});
    }
  }
  for (const auto& [name, path] : masks)
    if (!images.count(name)) no_image.push_back(name);
  if (!no_mask.empty() || !no_image.empty()) {
    std::string reason = "images and masks are paired by file name, and some files have no partner:";
    if (!no_mask.empty())
      reason += fmt::format(" {} image(s) without a mask in {}: {}.", no_mask.size(), masks_dir, list_names(no_mask));
    if (!no_image.empty())
      reason +=
          fmt::format(" {} mask(s) without an image in {}: {}.", no_image.size(), images_dir, list_names(no_image));
    throw DataError(no_mask.empty() ? masks_dir : images_dir, reason);
  }
  return pairs;  // std::map iterates in name order
}

cv::Mat read_slice(const std::string& path) {
  // libtiff for TIFFs (every sample type, libtiff's own messages); OpenCV for the rest.
  cv::Mat image = is_tiff_file(path) ? read_tiff(path) : read_image(path);
  if (image.channels() == 3) {
    cv::cvtColor(image, image, cv::COLOR_BGR2GRAY);
  } else if (image.channels() == 4) {
    cv::cvtColor(image, image, cv::COLOR_BGRA2GRAY);
  } else if (image.channels() != 1) {
    throw DataError(path, fmt::format("{} channels; need a grey (or colour) image", image.channels()));
  }
  return image;
}

cv::Mat binary_mask(const cv::Mat& mask, const std::string& path) {
  cv::Mat values;
  mask.convertTo(values, CV_32F);
  double lo = 0, hi = 0;
  cv::minMaxLoc(values, &lo, &hi);
  const double top = hi <= 1.0 ? 1.0 : 255.0;
  const cv::Mat other = (values != 0.0f) & (values != static_cast<float>(top));
  if (lo < 0 || hi > 255.0 || cv::countNonZero(other) > 0) {
    cv::Point where;
    cv::minMaxLoc(other, nullptr, nullptr, nullptr, &where);
    throw DataError(path, fmt::format("mask values must be 0/1 or 0/255; pixel (row {}, column {}) is {} "
                                      "(mask range {} to {})",
                                      where.y, where.x, values.at<float>(where), lo, hi));
  }
  cv::Mat out;
  values.convertTo(out, CV_8U, 1.0 / top);
  return out;
}

// The schema (plugin.cpp) checks that window is [] or [center, width >= 1].
LungCtDataset::LungCtDataset(LungCtOptions options) : options_(std::move(options)) {
  pairs_ = pair_files(options_.images_dir, options_.masks_dir);
  if (options_.limit > 0 && pairs_.size() > options_.limit) pairs_.resize(options_.limit);
}

const FilePair& LungCtDataset::pair(std::size_t index) const {
  if (index >= pairs_.size())
    throw std::out_of_range(fmt::format("lung_ct: index {} is out of range (size {})", index, pairs_.size()));
  return pairs_[index];
}

SampleInfo LungCtDataset::info(std::size_t index) const {
  const FilePair& p = pair(index);
  SampleInfo info;
  info.id = fs::path(p.name).stem().string();
  info.group = group_of(p.name);
  info.label = 0;
  return info;
}

Sample LungCtDataset::get(std::size_t index) const {
  const FilePair& p = pair(index);
  const cv::Mat raw = read_slice(p.image);
  const cv::Mat raw_mask = read_slice(p.mask);
  if (raw.size() != raw_mask.size())
    throw DataError(p.mask, fmt::format("mask is {}x{} but its image {} is {}x{}", raw_mask.cols, raw_mask.rows,
                                        p.image, raw.cols, raw.rows));
  const int size = options_.image_size;
  cv::Mat values;
  raw.convertTo(values, CV_32F);  // HU stay HU: the window below needs them
  cv::Mat resized;
  if (options_.interpolation == Interpolation::Lanczos4) {
    cv::resize(values, resized, cv::Size(size, size), 0, 0, cv::INTER_LANCZOS4);
  } else {
    resized = resize_image(values, size, size, Upscale::lanczos4);
  }
  // Normalised after resizing, so Lanczos' overshoot cannot leave [0, 1].
  const cv::Mat unit = options_.window.empty() ? normalize_minmax(resized)
                                               : window(resized, options_.window[0], options_.window[1]);
  const cv::Mat mask = resize_mask(binary_mask(raw_mask, p.mask), size, size);
  cv::Mat mask_f;
  mask.convertTo(mask_f, CV_32F);

  Sample s;
  s.image = to_tensor(unit);
  s.mask = to_tensor(mask_f);
  s.label = 0;
  s.id = fs::path(p.name).stem().string();
  s.group = group_of(p.name);
  s.original_height = raw.rows;
  s.original_width = raw.cols;
  s.meta["file"] = p.name;
  return s;
}

}  // namespace chestlab::lung_ct

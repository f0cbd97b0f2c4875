// Statistics of the RSNA label tables, as the public notebooks draw them (`chestlab explore`):
// boxes per image, where boxes lie, their widths, heights and k-means size clusters, class
// balance, and age / sex / view position from the DICOM header table. Needs no images.
// Torch-free; figures drawn through the report library's plots (an implementation detail:
// this header does not expose them, so plugins can use the package without the report).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chestlab/rsna/labels.h"

namespace chestlab {

struct RsnaExploreOptions {
  int kmeans_k = 5;            // clusters of (width, height); fewer when there are fewer boxes
  std::uint64_t seed = 42;     // k-means initialisation (k-means++), so the result repeats
  int grid = 64;               // heatmap cells per side
  double image_side = 1024;    // side of the images the box coordinates refer to
  std::string title = "RSNA labels";
  bool svg = false;            // figures as SVG instead of PNG
};

// Patients (and how many of them are positive, Target 1) per value of a category.
struct RsnaCountRow {
  std::string key;
  std::size_t patients = 0;
  std::size_t positive = 0;
};

// n == 0: no values (the other fields are 0).
struct NumberSummary {
  std::size_t n = 0;
  double min = 0, median = 0, mean = 0, max = 0;
};
NumberSummary summarize_numbers(std::vector<double> values);

struct RsnaSizeCluster {
  double width = 0, height = 0;  // the centre, pixels
  std::size_t boxes = 0;
};

struct RsnaExploreStats {
  std::size_t patients = 0;
  std::size_t positive = 0;
  std::size_t boxes = 0;
  std::vector<std::size_t> boxes_per_image;  // [n] = patients with n boxes
  std::vector<RsnaCountRow> classes;         // the 3 classes, then "unknown" when any
  bool has_metadata = false;                 // some patient has header fields
  std::vector<RsnaCountRow> sex, view;       // by PatientSex / ViewPosition, "(missing)" last
  NumberSummary age;                          // plausible ages (0..120 years)
  std::size_t age_missing = 0;                // no or non-numeric PatientAge
  std::size_t age_implausible = 0;            // > 120 years (the stage 2 table has a few)
  NumberSummary width, height, area;          // of the boxes, pixels
  std::vector<RsnaSizeCluster> clusters;      // by increasing area
  std::vector<int> cluster_of_box;            // per box, in patient and file order
};

RsnaExploreStats explore_rsna(const std::vector<RsnaPatient>& patients, const RsnaExploreOptions& options);

// The markdown report: tables of every statistic, and links to `figures` (file names).
std::string rsna_explore_markdown(const RsnaExploreStats& stats, const RsnaExploreOptions& options,
                                  const std::vector<std::string>& figures);

// Writes the figures and summary.md into `dir` (created); returns the file names written.
// Throws DataError when a file cannot be written.
std::vector<std::string> write_rsna_explore(const std::vector<RsnaPatient>& patients, const RsnaExploreStats& stats,
                                            const std::string& dir, const RsnaExploreOptions& options);

}  // namespace chestlab

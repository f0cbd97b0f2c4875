// The RSNA Pneumonia Detection Challenge as a dataset: one sample per patient of the labels
// table, its image read from `<images>/<patientId>.dcm` when asked for. Construction reads
// only the tables (no file is opened or stat'ed per patient), so it is quick for all 26,684.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chestlab/rsna/cache.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/sdk.h"

namespace chestlab::rsna_pneumonia {

struct RsnaDatasetOptions {
  std::string labels_csv;      // absolute, or relative to the working directory
  std::string class_info_csv;  // "" = none: labels are Target (0/1) and there are 2 classes
  std::string headers_csv;     // "" = none: no meta
  std::string images_dir;
  std::size_t limit = 0;       // first N patients; 0 = all
  std::string cache_path;      // "" = no cache
  rsna::RsnaPreprocess preprocess;
};

class RsnaDataset : public Dataset {
 public:
  // Throws DataError for unreadable tables, ConfigError for invalid options.
  explicit RsnaDataset(RsnaDatasetOptions options);
  // Every <patientId>.dcm of options.images_dir (sorted by id, not recursive) as an
  // unlabelled patient, read like training images; tables, limit and cache are not used.
  // Throws DataError when the folder is missing or holds no .dcm file.
  static std::shared_ptr<RsnaDataset> folder(RsnaDatasetOptions options);

  std::size_t size() const override { return patients_.size(); }
  SampleInfo info(std::size_t index) const override;
  // Throws DataError(<file>.dcm, reason) for a missing or undecodable image.
  Sample get(std::size_t index) const override;
  std::vector<std::string> class_names() const override;

  // The path the image of sample `index` is read from.
  std::string image_path(std::size_t index) const;
  // nullptr without a cache.
  rsna::RsnaImageCache* cache() const { return cache_.get(); }

 private:
  RsnaDataset(RsnaDatasetOptions options, std::vector<RsnaPatient> patients);
  const RsnaPatient& patient(std::size_t index) const;
  std::int64_t label_of(const RsnaPatient& p) const;
  rsna::PreparedImage prepared_image(const RsnaPatient& p) const;

  RsnaDatasetOptions options_;
  std::vector<RsnaPatient> patients_;
  bool has_classes_ = false;
  std::unique_ptr<rsna::RsnaImageCache> cache_;
};

}  // namespace chestlab::rsna_pneumonia

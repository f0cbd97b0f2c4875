// A dataset of procedural chest radiographs: every sample is generated on demand from
// (experiment seed + seed_offset, index), so the pool costs no disk and no memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chestlab/sdk.h"
#include "chestlab/synth/chest.h"

namespace chestlab::synthetic_cxr {

struct SyntheticCxrOptions {
  synth::ChestOptions chest;
  std::size_t count = 240;
  std::uint64_t seed = 0;      // experiment seed + seed_offset
  std::size_t patients = 0;    // 0: one image per patient
};

class SyntheticCxrDataset : public Dataset {
 public:
  // Throws ConfigError for options the schema cannot express (patients > count).
  explicit SyntheticCxrDataset(SyntheticCxrOptions options);

  std::size_t size() const override { return options_.count; }
  // Cheap: reads only the label's random numbers, draws no pixels.
  SampleInfo info(std::size_t index) const override;
  Sample get(std::size_t index) const override;
  std::vector<std::string> class_names() const override;

 private:
  void check_index(std::size_t index) const;
  std::uint64_t patient_of(std::size_t index) const;
  std::string group_of(std::size_t index) const;

  SyntheticCxrOptions options_;
};

}  // namespace chestlab::synthetic_cxr

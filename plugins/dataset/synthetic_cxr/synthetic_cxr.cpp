#include "synthetic_cxr.h"

#include <torch/torch.h>

#include "chestlab/detection/box_tensor.h"

#include <stdexcept>
#include <utility>

namespace chestlab::synthetic_cxr {

namespace {

// CV_8U H x W -> float32 [1, H, W], values times `scale`. Copies, so the Mat may go.
torch::Tensor to_tensor(const cv::Mat& m, float scale) {
  CV_Assert(m.type() == CV_8UC1 && m.isContinuous());
  return torch::from_blob(m.data, {1, m.rows, m.cols}, torch::kUInt8).to(torch::kFloat32).mul_(scale);
}

}  // namespace

// The schema (plugin.cpp) bounds every option within what synth::validate accepts and
// checks patients <= count.
SyntheticCxrDataset::SyntheticCxrDataset(SyntheticCxrOptions options) : options_(std::move(options)) {}

void SyntheticCxrDataset::check_index(std::size_t index) const {
  if (index >= options_.count) {
    throw std::out_of_range("synthetic_cxr: index " + std::to_string(index) + " is out of range (size " +
                            std::to_string(options_.count) + ")");
  }
}

// Images are dealt to patients round-robin, so every patient has images of several kinds.
std::uint64_t SyntheticCxrDataset::patient_of(std::size_t index) const {
  return options_.patients == 0 ? index : index % options_.patients;
}

std::string SyntheticCxrDataset::group_of(std::size_t index) const {
  return "synth-patient-" + std::to_string(patient_of(index));
}

SampleInfo SyntheticCxrDataset::info(std::size_t index) const {
  check_index(index);
  SampleInfo info;
  info.id = "synth-" + std::to_string(index);
  info.group = group_of(index);
  info.label = synth::chest_label(options_.chest, options_.seed, index);
  return info;
}

Sample SyntheticCxrDataset::get(std::size_t index) const {
  check_index(index);
  // With patients, a patient's images share their anatomy (the generator seeds it from
  // the patient), which is what makes grouped folds matter.
  const synth::ChestImage chest =
      options_.patients == 0
          ? synth::generate_chest(options_.chest, options_.seed, index)
          : synth::generate_chest(options_.chest, options_.seed, index, patient_of(index));
  Sample s;
  s.image = to_tensor(chest.image, 1.0f / 255.0f);
  s.mask = to_tensor(chest.mask, 1.0f);
  s.boxes = boxes_to_tensor(chest.boxes);
  s.label = chest.label;
  s.id = "synth-" + std::to_string(index);
  s.group = group_of(index);
  s.original_height = chest.image.rows;
  s.original_width = chest.image.cols;
  s.meta["opacities"] = std::to_string(chest.boxes.size());
  return s;
}

std::vector<std::string> SyntheticCxrDataset::class_names() const { return synth::chest_class_names(); }

}  // namespace chestlab::synthetic_cxr

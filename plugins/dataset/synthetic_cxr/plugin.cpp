// Registers the synthetic_cxr dataset.
#include <fmt/format.h>

#include "chestlab/sdk.h"
#include "synthetic_cxr.h"

namespace {

using namespace chestlab;

ComponentInfo synthetic_cxr_info() {
  ComponentInfo info;
  info.kind = Kind::Dataset;
  info.name = "synthetic_cxr";
  info.version = "1.0.0";
  info.description =
      "Procedural chest radiographs with lung opacities (mask and boxes), generated on demand; "
      "RSNA's three classes";
  info.params = {
      param_int("count", 240, "number of images in the pool").at_least(1),
      param_int("image_size", 128, "images are image_size x image_size pixels").range(32, 2048),
      param_float("positive_fraction", 0.6,
                  "share of images with at least one opacity (class 2, Lung Opacity)")
          .range(0.0, 1.0),
      param_float("abnormal_fraction", 0.57,
                  "share of the opacity-free images with diffuse non-opacity findings (class 1, No Lung "
                  "Opacity / Not Normal); RSNA's stage-2 table has 0.57")
          .range(0.0, 1.0),
      param_int("max_opacities", 3, "most opacities on one image (1 is the most common, like RSNA's)")
          .range(1, 8),
      param_float("noise", 0.03, "standard deviation of the pixel noise, in intensity units of [0, 1]")
          .range(0.0, 0.5),
      param_int("seed_offset", 0,
                "images derive from the experiment seed plus this: another offset gives another pool"),
      param_int("patients", 0,
                "0: one image per patient; N > 0: images are dealt round-robin to N patients who share "
                "their anatomy, so grouped folds have real groups (N <= count)")
          .at_least(0),
  };
  info.checks = {param_check({"patients", "count"}, "patients <= count", [](const Params& p) {
    if (p.integer("patients") <= p.integer("count")) return std::string();
    return fmt::format("patients ({}) must not exceed count ({}): every patient needs at least one image",
                       p.integer("patients"), p.integer("count"));
  })};
  info.tags["provides"] = "image, mask, boxes";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_dataset(synthetic_cxr_info(), [](const Params& p, const DatasetContext& context) {
    synthetic_cxr::SyntheticCxrOptions o;
    o.chest.size = static_cast<int>(p.integer("image_size"));
    o.chest.positive_fraction = p.real("positive_fraction");
    o.chest.abnormal_fraction = p.real("abnormal_fraction");
    o.chest.max_opacities = static_cast<int>(p.integer("max_opacities"));
    o.chest.noise = p.real("noise");
    o.count = static_cast<std::size_t>(p.integer("count"));
    o.patients = static_cast<std::size_t>(p.integer("patients"));
    // Unsigned arithmetic wraps, so a negative offset is well defined too.
    o.seed = context.seed + static_cast<std::uint64_t>(p.integer("seed_offset"));
    return std::make_shared<synthetic_cxr::SyntheticCxrDataset>(std::move(o));
  });
}

// Registers the lung_ct dataset.
#include "chestlab/sdk.h"
#include "lung_ct.h"

namespace {

using namespace chestlab;

ComponentInfo lung_ct_info() {
  ComponentInfo info;
  info.kind = Kind::Dataset;
  info.name = "lung_ct";
  info.version = "1.0.0";
  info.description =
      "2D lung CT slices and lung masks paired by file name (TIFF via libtiff, or PNG), in file-name order; "
      "the Kaggle 'Finding and Measuring Lungs in CT Data' layout";
  info.params = {
      param_required("images", ParamType::String,
                     "folder of image slices (.tif/.tiff: 8/16-bit integers, signed or not, or float; .png); "
                     "relative to the experiment file"),
      param_required("masks", ParamType::String,
                     "folder of masks with the same file names, values 0/1 or 0/255; relative to the experiment file"),
      param_int("image_size", 128, "images and masks are resized to image_size x image_size").range(16, 4096),
      param_floats("window", {},
                   "[] = min-max normalisation of each image (the course notebook); [center, width] = linear HU "
                   "window to [0, 1] (e.g. [-600, 1500] for lungs)"),
      param_string("interpolation", "lanczos4",
                   "image resizing: `lanczos4` = cv::INTER_LANCZOS4 in one step also when shrinking (the "
                   "notebook); `area` = area averaging where an axis shrinks, Lanczos where it grows. Masks "
                   "are always resized nearest-neighbour")
          .one_of({"lanczos4", "area"}),
      param_int("limit", 0, "use only the first N pairs in file-name order (quick runs); 0 = all").at_least(0),
  };
  info.checks = {param_check({"window"}, "window is [] or [center, width >= 1]", [](const Params& p) {
    const auto window = p.reals("window");
    if (window.empty() || (window.size() == 2 && window[1] >= 1.0)) return std::string();
    return "expected [] (per-image min-max) or [center, width] with width >= 1, got " + to_toml(ParamValue{window});
  })};
  info.tags["provides"] = "image, mask";
  return info;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_dataset(lung_ct_info(), [](const Params& p, const DatasetContext& context) {
    lung_ct::LungCtOptions o;
    o.images_dir = context.resolve(p.str("images"));
    o.masks_dir = context.resolve(p.str("masks"));
    o.image_size = static_cast<int>(p.integer("image_size"));
    o.window = p.reals("window");
    o.interpolation = p.str("interpolation") == "area" ? lung_ct::Interpolation::Area : lung_ct::Interpolation::Lanczos4;
    o.limit = static_cast<std::size_t>(p.integer("limit"));
    return std::make_shared<lung_ct::LungCtDataset>(std::move(o));
  });
}

// Registers the rsna_pneumonia dataset.
#include "chestlab/sdk.h"
#include "rsna_dataset.h"

namespace {

using namespace chestlab;

ComponentInfo rsna_pneumonia_info() {
  ComponentInfo info;
  info.kind = Kind::Dataset;
  info.name = "rsna_pneumonia";
  info.version = "1.0.0";
  info.description =
      "RSNA Pneumonia Detection Challenge radiographs (<patientId>.dcm) with box labels, box masks and the "
      "3 classes; optional HDF5 preprocessing cache";
  info.params = {
      param_required("labels", ParamType::String,
                     "stage_2_train_labels.csv (patientId,x,y,width,height,Target); relative to the experiment file"),
      param_string("class_info", "",
                   "stage_2_detailed_class_info.csv; \"\": labels are Target (2 classes) instead of the 3 classes"),
      param_string("headers", "",
                   "DICOM headers table (kaggle_stage_2_train_images_dicom_headers.csv.gz): sample meta "
                   "PatientAge, PatientSex, ViewPosition, PixelSpacing"),
      param_required("images", ParamType::String, "folder of <patientId>.dcm files; relative to the experiment file"),
      param_int("image_size", 256, "images (and masks) are resized to image_size x image_size").range(16, 4096),
      param_floats("window", {},
                   "[] = min-max normalisation of each image; [center, width] = DICOM linear VOI window to [0, 1]"),
      param_string("multiframe", "first", "a multi-frame file: take frame 1, or refuse it").one_of({"first", "error"}),
      param_string("decode", "fast",
                   "8-bit grey JPEG files: \"fast\" = libjpeg-turbo decodes straight to the DCT scale (1/2, 1/4, "
                   "1/8) nearest above image_size, then area resize; \"exact\" = DCMTK decodes at full size. Values "
                   "differ by the decoders' rounding and min-max's range (docs/rsna.md); each has its own cache")
          .one_of({"fast", "exact"}),
      param_int("limit", 0, "use only the first N patients of the labels table (quick runs); 0 = all").at_least(0),
      param_string("cache", "",
                   "HDF5 file caching the decoded, resized images (rebuilt when these parameters change); "
                   "\"\" = no cache; `chestlab cache EXP.toml` fills it ahead"),
      param_string("mask_from", "boxes", "how the opacity mask is made: the union of the labelled boxes")
          .one_of({"boxes"}),
  };
  info.tags["provides"] = "image, mask, boxes";
  return info;
}

rsna_pneumonia::RsnaDatasetOptions options_of(const Params& p, const DatasetContext& context) {
  rsna_pneumonia::RsnaDatasetOptions o;
  o.labels_csv = context.resolve(p.str("labels"));
  o.class_info_csv = context.resolve(p.str("class_info"));
  o.headers_csv = context.resolve(p.str("headers"));
  o.images_dir = context.resolve(p.str("images"));
  o.cache_path = context.resolve(p.str("cache"));
  o.limit = static_cast<std::size_t>(p.integer("limit"));
  o.preprocess.image_size = static_cast<int>(p.integer("image_size"));
  o.preprocess.window = p.reals("window");
  o.preprocess.multiframe = parse_multiframe_policy(p.str("multiframe"));
  o.preprocess.fast_decode = p.str("decode") == "fast";
  return o;
}

}  // namespace

CHESTLAB_PLUGIN(registrar) {
  registrar.add_dataset(
      rsna_pneumonia_info(),
      [](const Params& p, const DatasetContext& context) {
        return std::make_shared<rsna_pneumonia::RsnaDataset>(options_of(p, context));
      },
      // predict: every <patientId>.dcm of a folder, preprocessed as the run's images were.
      [](const Params& p, const DatasetContext& context, const std::string& folder) {
        auto o = options_of(p, context);
        o.images_dir = folder;
        return rsna_pneumonia::RsnaDataset::folder(std::move(o));
      });
}

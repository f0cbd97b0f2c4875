// DICOM reading and writing through DCMTK. See chestlab/imaging/dicom.h and docs/dicom.md.
//
// Layout of this file: DCMTK setup (codecs, log capture), header parsing and validation,
// pixel decoding (DCMTK, then the libjpeg-turbo fast path), the public reader, then the writer.
#include "chestlab/imaging/dicom.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <variant>

// DCMTK. osconfig.h must come first.
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dccodec.h"
#include "dcmtk/dcmdata/dcistrmf.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmimage/diregist.h"  // colour images (RGB, YBR) in DicomImage
#include "dcmtk/dcmimgle/dcmimage.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrploss.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/spi/logevent.h"
#include "dcmtk/oflog/oflog.h"

#include "chestlab/errors.h"
#include "chestlab/hash.h"
#include "chestlab/imaging/image_ops.h"
#include "turbo_jpeg.h"

namespace chestlab {

namespace {

namespace log4 = dcmtk::log4cplus;

// ---- DCMTK setup: codecs and log capture ---------------------------------------------------

// DCMTK logs through OFLog (log4cplus) to stderr by default. One appender replaces that for the
// whole process; it hands each message to the sink of the thread that logged it (DCMTK logs
// synchronously on the calling thread), so concurrent reads never see each other's messages.
thread_local std::vector<std::string>* t_message_sink = nullptr;

class CaptureAppender : public log4::Appender {
 public:
  ~CaptureAppender() override { destructorImpl(); }
  void close() override {}

 protected:
  void append(const log4::spi::InternalLoggingEvent& event) override {
    if (t_message_sink == nullptr || t_message_sink->size() >= 50) return;
    t_message_sink->emplace_back(event.getMessage().c_str());
  }
};

// Collects DCMTK's warnings and errors logged on this thread while it lives. Scopes nest:
// an inner scope passes its messages on to the enclosing one unless discarded.
class DcmtkMessages {
 public:
  DcmtkMessages() : previous_(t_message_sink) { t_message_sink = &messages_; }
  ~DcmtkMessages() {
    t_message_sink = previous_;
    if (previous_ != nullptr)
      previous_->insert(previous_->end(), messages_.begin(), messages_.end());
  }
  DcmtkMessages(const DcmtkMessages&) = delete;
  DcmtkMessages& operator=(const DcmtkMessages&) = delete;

  void discard() { messages_.clear(); }
  const std::vector<std::string>& messages() const { return messages_; }

  // "first; second" (repeated lines once, at most four) or "" when DCMTK said nothing.
  std::string joined() const {
    std::vector<std::string> distinct;
    for (const auto& m : messages_)
      if (std::find(distinct.begin(), distinct.end(), m) == distinct.end() && distinct.size() < 4)
        distinct.push_back(m);
    return fmt::format("{}", fmt::join(distinct, "; "));
  }
  // " (DCMTK: ...)" or "".
  std::string suffix() const {
    const std::string text = joined();
    return text.empty() ? text : " (DCMTK: " + text + ")";
  }

 private:
  std::vector<std::string> messages_;
  std::vector<std::string>* previous_;
};

void install_log_capture() {
  OFLog::configure(OFLogger::WARN_LOG_LEVEL);
  log4::Logger root = log4::Logger::getRoot();
  root.removeAllAppenders();
  root.addAppender(log4::SharedAppenderPtr(new CaptureAppender));
  root.setLogLevel(log4::WARN_LOG_LEVEL);
}

// Codec registration touches DCMTK's global codec list: exactly once per process.
void ensure_dcmtk_ready() {
  static std::once_flag once;
  std::call_once(once, [] {
    install_log_capture();
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
    // Encoder for the synthetic corpus: keep the SOP Instance UID we set (EUC_never, for
    // reproducible files) and write no Basic Offset Table (single frame; the RSNA files
    // have an empty one).
    // pUsePixelValues off: otherwise the encoder stretches the image's own min..max to the
    // full 8 bits instead of keeping the stored values.
    DJEncoderRegistration::registerCodecs(
        ECC_lossyYCbCr, EUC_never, /*pOptimizeHuffman=*/OFFalse, /*pSmoothingFactor=*/0,
        /*pForcedBitDepth=*/0, /*pFragmentSize=*/0, /*pCreateOffsetTable=*/OFFalse, ESS_444,
        /*pWriteYBR422=*/OFFalse, /*pConvertToSC=*/OFFalse, /*pWindowType=*/0,
        /*pWindowParameter=*/0, 0.0, 0.0, 0, 0, 0, 0, /*pUsePixelValues=*/OFFalse);
  });
  if (!dcmDataDict.isDictionaryLoaded())
    throw std::runtime_error(
        "DCMTK has no DICOM data dictionary loaded: install DCMTK's dicom.dic or point "
        "DCMDICTPATH at it");
}

// ---- header parsing ---------------------------------------------------------------------

std::string xfer_label(E_TransferSyntax xfer) {
  DcmXfer x(xfer);
  return fmt::format("{} ({})", x.getXferName(), x.getXferID());
}

std::optional<long> get_integer(DcmItem& ds, const DcmTagKey& key) {
  Uint16 us = 0;
  if (ds.findAndGetUint16(key, us).good()) return us;
  Sint32 is = 0;  // Number of Frames is IS
  if (ds.findAndGetSint32(key, is).good()) return is;
  return std::nullopt;
}

std::optional<double> get_double(DcmItem& ds, const DcmTagKey& key, unsigned long pos = 0) {
  Float64 v = 0;
  if (ds.findAndGetFloat64(key, v, pos).good()) return v;
  return std::nullopt;
}

std::string get_string(DcmItem& ds, const DcmTagKey& key) {
  OFString v;
  if (ds.findAndGetOFStringArray(key, v).good()) return v.c_str();
  return "";
}

long require_integer(DcmItem& ds, const DcmTagKey& key, const std::string& path) {
  auto v = get_integer(ds, key);
  if (!v) throw DataError(path, fmt::format("missing or invalid {}", DcmTag(key).getTagName()));
  return *v;
}

// The header attributes reported in DicomInfo::metadata, by keyword.
const DcmTagKey kMetadataTags[] = {
    DCM_PatientID,         DCM_PatientName,        DCM_PatientSex,
    DCM_PatientAge,        DCM_ViewPosition,       DCM_BodyPartExamined,
    DCM_Modality,          DCM_PixelSpacing,       DCM_ImagerPixelSpacing,
    DCM_SliceThickness,    DCM_ImagePositionPatient, DCM_ImageOrientationPatient,
    DCM_SOPClassUID,       DCM_SOPInstanceUID,     DCM_StudyInstanceUID,
    DCM_SeriesInstanceUID, DCM_StudyDate,          DCM_SeriesDescription,
    DCM_ConversionType,    DCM_Manufacturer,       DCM_SeriesNumber,
    DCM_InstanceNumber,    DCM_LossyImageCompression,
};

std::map<std::string, std::string> read_metadata(DcmItem& ds) {
  std::map<std::string, std::string> out;
  for (const DcmTagKey& key : kMetadataTags) {
    if (!ds.tagExists(key)) continue;
    out[DcmTag(key).getTagName()] = get_string(ds, key);
  }
  return out;
}

// ---- loading ----------------------------------------------------------------------------

bool has_dicm_prefix(const std::vector<char>& head) {
  return head.size() >= 132 && std::equal(head.begin() + 128, head.begin() + 132, "DICM");
}

std::vector<char> read_head(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> head(n);
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
  return head;
}

// A bare data set (no preamble/meta) normally starts with an element of group 0008. Some
// files in the wild carry a few stray bytes before it (pydicom's no_meta.dcm has one);
// this finds where group 0008 starts within the first 16 bytes, explicit or implicit VR.
std::optional<std::size_t> find_group8_start(const std::vector<char>& head) {
  for (std::size_t k = 1; k + 8 <= head.size() && k < 16; ++k) {
    const auto* b = reinterpret_cast<const unsigned char*>(head.data() + k);
    if (b[0] != 0x08 || b[1] != 0x00 || b[3] != 0x00) continue;  // (0008,00xx), little endian
    const bool explicit_vr = std::isupper(b[4]) && std::isupper(b[5]);
    const std::uint32_t implicit_len = b[4] | (b[5] << 8) | (b[6] << 16) | (std::uint32_t(b[7]) << 24);
    if (explicit_vr || implicit_len < 1024) return k;
  }
  return std::nullopt;
}

OFCondition read_dataset_at(DcmFileFormat& ff, const std::string& path, std::size_t offset) {
  DcmInputFileStream stream(OFFilename(path.c_str()), static_cast<offile_off_t>(offset));
  if (stream.status().bad()) return stream.status();
  DcmDataset* ds = ff.getDataset();
  ds->clear();
  ds->transferInit();
  // Everything into memory: DCMTK's deferred loading of large values would re-open the
  // file without the offset.
  OFCondition cond = ds->read(stream, EXS_Unknown, EGL_noChange, 0xFFFFFFFFu);
  ds->transferEnd();
  return cond;
}

// Parses the file into `ff`; returns notes about any recovery. Throws DataError.
std::vector<std::string> load_file(DcmFileFormat& ff, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw DataError(path, "no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(path, "not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(path, "cannot stat: " + ec.message());
  if (size == 0) throw DataError(path, "the file is empty (0 bytes)");

  DcmtkMessages log;
  OFCondition cond = ff.loadFile(OFFilename(path.c_str()), EXS_Unknown, EGL_noChange,
                                 DCM_MaxReadLength, ERM_autoDetect);
  if (cond.good()) return {};
  const std::string first_failure = cond.text() + log.suffix();

  const std::vector<char> head = read_head(path, 132);
  if (!has_dicm_prefix(head)) {
    if (auto start = find_group8_start(head)) {
      if (read_dataset_at(ff, path, *start).good()) {
        log.discard();  // the failed first attempt's complaints are resolved
        return {fmt::format("skipped {} stray byte(s) before the data set (no File Meta header)",
                            *start)};
      }
    }
    throw DataError(path, "not a readable DICOM file (no 'DICM' prefix at byte 128, and no "
                          "data set could be parsed): " + first_failure);
  }
  throw DataError(path, "cannot parse the DICOM data: " + first_failure);
}

// ---- header validation ------------------------------------------------------------------

struct PixelModule {
  long rows = 0, columns = 0, samples = 1, frames = 1;
  long bits_allocated = 0, bits_stored = 0, high_bit = 0, representation = 0;
  std::string photometric;
};

long parse_frame_count(DcmItem& ds, const std::string& path) {
  if (!ds.tagExists(DCM_NumberOfFrames)) return 1;
  Sint32 frames = 0;
  if (ds.findAndGetSint32(DCM_NumberOfFrames, frames).bad()) {
    // An empty Number of Frames (seen in the wild) means one frame.
    if (get_string(ds, DCM_NumberOfFrames).empty()) return 1;
    throw DataError(path, "Number of Frames '" + get_string(ds, DCM_NumberOfFrames) +
                              "' is not an integer");
  }
  if (frames < 1) throw DataError(path, fmt::format("Number of Frames is {} (must be >= 1)", frames));
  return frames;
}

PixelModule parse_pixel_module(DcmItem& ds, const std::string& path) {
  if (!ds.tagExists(DCM_PixelData)) {
    if (ds.tagExists(DCM_FloatPixelData) || ds.tagExists(DCM_DoubleFloatPixelData))
      throw DataError(path, "float pixel data is not supported (only integer Pixel Data)");
    throw DataError(path, "has no Pixel Data (7FE0,0010): not an image");
  }
  PixelModule p;
  p.rows = require_integer(ds, DCM_Rows, path);
  p.columns = require_integer(ds, DCM_Columns, path);
  if (p.rows < 1 || p.columns < 1 || p.rows > kMaxDicomDimension || p.columns > kMaxDicomDimension)
    throw DataError(path, fmt::format("image size {} x {} (rows x columns) is outside 1..{}",
                                      p.rows, p.columns, kMaxDicomDimension));
  p.samples = get_integer(ds, DCM_SamplesPerPixel).value_or(1);
  if (p.samples != 1 && p.samples != 3)
    throw DataError(path, fmt::format("Samples per Pixel is {} (1 or 3 supported)", p.samples));
  p.bits_allocated = require_integer(ds, DCM_BitsAllocated, path);
  if (p.bits_allocated != 1 && p.bits_allocated != 8 && p.bits_allocated != 16 &&
      p.bits_allocated != 32)
    throw DataError(path, fmt::format("Bits Allocated is {} (1, 8, 16 or 32 supported)",
                                      p.bits_allocated));
  p.bits_stored = get_integer(ds, DCM_BitsStored).value_or(p.bits_allocated);
  if (p.bits_stored < 1 || p.bits_stored > p.bits_allocated)
    throw DataError(path, fmt::format("Bits Stored is {} with Bits Allocated {}", p.bits_stored,
                                      p.bits_allocated));
  p.high_bit = get_integer(ds, DCM_HighBit).value_or(p.bits_stored - 1);
  p.representation = get_integer(ds, DCM_PixelRepresentation).value_or(0);
  p.photometric = get_string(ds, DCM_PhotometricInterpretation);
  p.frames = parse_frame_count(ds, path);
  return p;
}

// Native (uncompressed) pixel data must hold every frame the header announces; DCMTK would
// otherwise pad the missing part with zeros and return a partly invented image.
void check_native_length(DcmItem& ds, const PixelModule& p, const std::string& path) {
  DcmElement* pixel = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, pixel).bad() || pixel == nullptr)
    throw DataError(path, "cannot access Pixel Data");
  const double bits = double(p.rows) * double(p.columns) * double(p.samples) *
                      double(p.bits_allocated) * double(p.frames);
  const double needed = std::ceil(bits / 8.0);
  const double have = pixel->getLength();
  if (have < needed)
    throw DataError(path, fmt::format("Pixel Data holds {} bytes but {} x {} x {} sample(s) x {} "
                                      "bit(s) x {} frame(s) need {:.0f}: truncated or damaged",
                                      have, p.rows, p.columns, p.samples, p.bits_allocated,
                                      p.frames, needed));
}

// Each frame of encapsulated pixel data occupies at least one fragment (PS3.5 A.4), so a
// header announcing more frames than fragments is damaged.
void check_encapsulated(DcmItem& ds, const PixelModule& p, E_TransferSyntax xfer,
                        const std::string& path) {
  DcmPixelData* pixel = nullptr;
  DcmElement* element = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, element).good())
    pixel = OFdynamic_cast(DcmPixelData*, element);
  DcmPixelSequence* sequence = nullptr;
  if (pixel == nullptr || pixel->getEncapsulatedRepresentation(xfer, nullptr, sequence).bad() ||
      sequence == nullptr)
    throw DataError(path, "encapsulated Pixel Data has no fragment sequence: damaged");
  const long fragments = static_cast<long>(sequence->card()) - 1;  // item 0: offset table
  if (fragments < 1) throw DataError(path, "encapsulated Pixel Data holds no fragments");
  if (p.frames > fragments)
    throw DataError(path, fmt::format("Number of Frames is {} but the encapsulated Pixel Data has "
                                      "only {} fragment(s): damaged",
                                      p.frames, fragments));
}

void check_decodable(DcmItem& ds, const PixelModule& p, E_TransferSyntax xfer,
                     const std::string& path) {
  DcmXfer x(xfer);
  if (!x.isEncapsulated()) {
    check_native_length(ds, p, path);
    return;
  }
  if (!DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit))
    throw DataError(path, xfer_label(xfer) + " is not supported by this build's DICOM decoder");
  check_encapsulated(ds, p, xfer, path);
}

// ---- pixel decoding ---------------------------------------------------------------------

cv::Mat inter_data_to_float(const DiPixel& px, int rows, int cols, const std::string& path) {
  const void* data = px.getData();
  const std::size_t count = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  if (data == nullptr || px.getCount() < count || px.getPlanes() != 1)
    throw DataError(path, "the decoder returned no or too few pixel values");
  int type = -1;
  switch (px.getRepresentation()) {
    case EPR_Uint8: type = CV_8U; break;
    case EPR_Sint8: type = CV_8S; break;
    case EPR_Uint16: type = CV_16U; break;
    case EPR_Sint16: type = CV_16S; break;
    case EPR_Sint32: type = CV_32S; break;
    case EPR_Uint32: {  // no OpenCV type: convert by hand
      cv::Mat out(rows, cols, CV_32F);
      const auto* src = static_cast<const Uint32*>(data);
      auto* dst = out.ptr<float>();
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
      return out;
    }
  }
  if (type < 0) throw DataError(path, "the decoder returned an unknown pixel representation");
  cv::Mat view(rows, cols, type, const_cast<void*>(data));
  cv::Mat out;
  view.convertTo(out, CV_32F);
  return out;
}

struct DecodedFrame {
  cv::Mat values;               // modality values, CV_32F
  double possible_min = 0.0;    // range the stored bits can express, in modality units
  double possible_max = 0.0;
  bool monochrome = true;
  bool modality_lut = false;
  double slope = 1.0, intercept = 0.0;
  int scale_denominator = 1;    // values is rows/d x columns/d (rounded up): the fast path's DCT scaling
};

// Rescale Slope/Intercept, applied in float (DCMTK's intermediate data is integer and would
// round fractional slopes), to the values and to their possible range.
void apply_rescale(DcmItem& ds, DecodedFrame& out, const std::string& path) {
  out.slope = get_double(ds, DCM_RescaleSlope).value_or(1.0);
  out.intercept = get_double(ds, DCM_RescaleIntercept).value_or(0.0);
  if (out.slope == 0.0 || !std::isfinite(out.slope) || !std::isfinite(out.intercept))
    throw DataError(path, fmt::format("Rescale Slope {} / Intercept {} is not usable", out.slope,
                                      out.intercept));
  if (out.slope == 1.0 && out.intercept == 0.0) return;
  out.values.convertTo(out.values, CV_32F, out.slope, out.intercept);
  const double a = out.possible_min * out.slope + out.intercept;
  const double b = out.possible_max * out.slope + out.intercept;
  out.possible_min = std::min(a, b);
  out.possible_max = std::max(a, b);
}

std::unique_ptr<::DicomImage> open_first_frame(DcmFileFormat& ff, E_TransferSyntax xfer,
                                               bool use_dcmtk_modality, const std::string& path) {
  unsigned long flags = CIF_UsePartialAccessToPixelData;  // decode only frame 1
  if (!use_dcmtk_modality) flags |= CIF_IgnoreModalityTransformation;
  DcmtkMessages log;
  auto image = std::make_unique<::DicomImage>(&ff, xfer, flags, 0UL, 1UL);
  const std::string what = "cannot decode the " + xfer_label(xfer) + " pixel data: ";
  if (image->getStatus() != EIS_Normal)
    throw DataError(path, what + ::DicomImage::getString(image->getStatus()) + log.suffix());
  if (image->getInterData() == nullptr)
    throw DataError(path, what + "no pixel values" + log.suffix());
  // The IJG decoder only warns about a damaged stream and fills what it could not decode
  // with grey; such an image is partly invented, so it is refused.
  for (const std::string& m : log.messages())
    if (m.rfind("Corrupt JPEG data", 0) == 0 || m.rfind("Premature end of JPEG file", 0) == 0)
      throw DataError(path, what + "the JPEG stream is damaged" + log.suffix());
  return image;
}

DecodedFrame decode_first_frame(DcmFileFormat& ff, E_TransferSyntax xfer, const std::string& path,
                                std::vector<std::string>& notes) {
  DcmDataset& ds = *ff.getDataset();
  DecodedFrame out;
  // Slope/intercept are applied here in float (DCMTK's intermediate data is integer and would
  // round fractional slopes); a Modality LUT Sequence is left to DCMTK.
  out.modality_lut = ds.tagExists(DCM_ModalityLUTSequence);
  auto image = open_first_frame(ff, xfer, out.modality_lut, path);
  out.monochrome = image->isMonochrome();
  if (!out.monochrome) {
    // ITU-R BT.601 luma weights, DCMTK's defaults.
    DcmtkMessages log;
    std::unique_ptr<::DicomImage> grey(image->createMonochromeImage(0.299, 0.587, 0.114));
    if (!grey || grey->getStatus() != EIS_Normal || grey->getInterData() == nullptr)
      throw DataError(path, "cannot convert the colour image to grey" + log.suffix());
    image = std::move(grey);
    notes.push_back("colour converted to grey: 0.299 R + 0.587 G + 0.114 B");
  }
  const int rows = static_cast<int>(image->getHeight());
  const int cols = static_cast<int>(image->getWidth());
  out.values = inter_data_to_float(*image->getInterData(), rows, cols, path);
  if (!image->getMinMaxValues(out.possible_min, out.possible_max, 1)) {
    cv::minMaxLoc(out.values, &out.possible_min, &out.possible_max);
  }
  if (out.monochrome && !out.modality_lut) apply_rescale(ds, out, path);
  return out;
}

// ---- JPEG fast path (libjpeg-turbo) ---------------------------------------------------------

// "" when the fast path may decode this file, else why not. It takes only what it decodes
// exactly like DCMTK up to rounding: one 8-bit unsigned grey frame of a lossy 8-bit JPEG
// process, no Modality LUT (left to DCMTK). Everything else stays on the exact path.
std::string fast_path_refusal(DcmItem& ds, const PixelModule& p, E_TransferSyntax xfer) {
  if (xfer != EXS_JPEGProcess1 && xfer != EXS_JPEGProcess2_4) return "not JPEG Baseline or Extended";
  if (p.frames != 1) return "several frames";
  if (p.samples != 1) return "colour";
  if (p.bits_allocated != 8 || p.bits_stored != 8 || p.high_bit != 7 || p.representation != 0)
    return "not 8-bit unsigned";
  if (p.photometric != "MONOCHROME1" && p.photometric != "MONOCHROME2") return "photometric " + p.photometric;
  if (ds.tagExists(DCM_ModalityLUTSequence)) return "Modality LUT Sequence";
  return "";
}

// The one frame's JPEG stream: every fragment after the offset table, joined (an encoder
// may split a frame across fragments). nullopt when the sequence cannot be read.
std::optional<std::vector<std::uint8_t>> single_frame_stream(DcmItem& ds, E_TransferSyntax xfer) {
  DcmElement* element = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, element).bad()) return std::nullopt;
  auto* pixel = OFdynamic_cast(DcmPixelData*, element);
  DcmPixelSequence* sequence = nullptr;
  if (pixel == nullptr || pixel->getEncapsulatedRepresentation(xfer, nullptr, sequence).bad() ||
      sequence == nullptr)
    return std::nullopt;
  std::vector<std::uint8_t> stream;
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    DcmPixelItem* fragment = nullptr;
    Uint8* bytes = nullptr;
    if (sequence->getItem(fragment, i).bad() || fragment == nullptr) return std::nullopt;
    if (fragment->getLength() == 0) continue;
    if (fragment->getUint8Array(bytes).bad() || bytes == nullptr) return std::nullopt;
    stream.insert(stream.end(), bytes, bytes + fragment->getLength());
  }
  return stream;
}

// The frame decoded by libjpeg-turbo, scaled down as far as opts allow, or nullopt (with a
// note when the file looked eligible but libjpeg-turbo refused it) for the exact path.
std::optional<DecodedFrame> decode_fast(DcmItem& ds, const PixelModule& p, E_TransferSyntax xfer,
                                        const DicomReadOptions& opts, const std::string& path,
                                        std::vector<std::string>& notes) {
  if (!fast_path_refusal(ds, p, xfer).empty()) return std::nullopt;
  const auto stream = single_frame_stream(ds, xfer);
  if (!stream) return std::nullopt;  // the exact path reports what is wrong with the data
  const int rows = static_cast<int>(p.rows), cols = static_cast<int>(p.columns);
  // A minimum of 0 asks for that axis at full size.
  const int denominator = turbo::scale_denominator(rows, cols, opts.min_rows > 0 ? opts.min_rows : rows,
                                                   opts.min_columns > 0 ? opts.min_columns : cols);
  auto decoded = turbo::decode_grey(*stream, rows, cols, denominator);
  if (const auto* refusal = std::get_if<turbo::Refusal>(&decoded)) {
    notes.push_back("JPEG fast path not taken (" + refusal->reason + "): decoded by DCMTK");
    return std::nullopt;
  }
  auto& grey = std::get<turbo::GreyFrame>(decoded);
  DecodedFrame out;
  grey.pixels.convertTo(out.values, CV_32F);
  out.possible_min = 0.0;  // what DCMTK reports for 8 stored bits, unsigned
  out.possible_max = 255.0;
  out.scale_denominator = denominator;
  apply_rescale(ds, out, path);
  notes.push_back(denominator == 1
                      ? std::string("JPEG fast path: decoded by libjpeg-turbo at full size")
                      : fmt::format("JPEG fast path: decoded by libjpeg-turbo at DCT scale 1/{} ({} x {})",
                                    denominator, out.values.rows, out.values.cols));
  return out;
}

void fill_header_info(DicomInfo& info, DcmFileFormat& ff, const PixelModule& p,
                      E_TransferSyntax xfer) {
  DcmDataset& ds = *ff.getDataset();
  info.rows = static_cast<int>(p.rows);
  info.columns = static_cast<int>(p.columns);
  info.frames = static_cast<int>(p.frames);
  info.samples_per_pixel = static_cast<int>(p.samples);
  info.bits_allocated = static_cast<int>(p.bits_allocated);
  info.bits_stored = static_cast<int>(p.bits_stored);
  info.high_bit = static_cast<int>(p.high_bit);
  info.pixel_representation = static_cast<int>(p.representation);
  info.photometric_interpretation = p.photometric;
  DcmXfer x(xfer);
  info.transfer_syntax_uid = x.getXferID();
  info.transfer_syntax_name = x.getXferName();
  info.has_file_meta = ff.getMetaInfo() != nullptr && ff.getMetaInfo()->tagExists(DCM_TransferSyntaxUID);
  info.window_center = get_double(ds, DCM_WindowCenter);
  info.window_width = get_double(ds, DCM_WindowWidth);
  if (!info.window_center || !info.window_width) info.window_center = info.window_width = std::nullopt;
  // Metadata strings are UTF-8 like every other string here; DCMTK converts from the
  // Specific Character Set (a no-op for plain ASCII files).
  if (ds.tagExists(DCM_SpecificCharacterSet)) {
    DcmtkMessages log;
    if (ds.convertToUTF8().bad())
      info.notes.push_back("metadata left in the file's character set (conversion to UTF-8 "
                           "failed" + log.suffix() + ")");
  }
  info.metadata = read_metadata(ds);
}

}  // namespace

// ---- public reader ----------------------------------------------------------------------

MultiFramePolicy parse_multiframe_policy(const std::string& text) {
  if (text == "first") return MultiFramePolicy::first;
  if (text == "error") return MultiFramePolicy::error;
  throw ConfigError("multiframe = '" + text + "': allowed values are \"first\" and \"error\"");
}

const char* to_string(MultiFramePolicy policy) {
  return policy == MultiFramePolicy::first ? "first" : "error";
}

DicomImage read_dicom(const std::string& path, const DicomReadOptions& opts) {
  ensure_dcmtk_ready();
  DicomImage result;
  DicomInfo& info = result.info;
  try {
    DcmtkMessages warnings;  // whatever DCMTK reports for a file it still decodes
    DcmFileFormat ff;
    info.notes = load_file(ff, path);
    DcmDataset& ds = *ff.getDataset();
    const E_TransferSyntax xfer = ds.getOriginalXfer();
    const PixelModule p = parse_pixel_module(ds, path);
    fill_header_info(info, ff, p, xfer);
    if (p.frames > 1) {
      if (opts.multiframe == MultiFramePolicy::error)
        throw DataError(path, fmt::format("has {} frames and multiframe = error (use multiframe = "
                                          "first to take frame 1)",
                                          p.frames));
      info.notes.push_back(fmt::format("multi-frame: returned frame 1 of {}", p.frames));
    }
    check_decodable(ds, p, xfer, path);

    std::optional<DecodedFrame> fast;
    if (opts.fast_jpeg) fast = decode_fast(ds, p, xfer, opts, path, info.notes);
    DecodedFrame frame = fast ? std::move(*fast) : decode_first_frame(ff, xfer, path, info.notes);
    const long d = frame.scale_denominator;
    if (frame.values.rows != (p.rows + d - 1) / d || frame.values.cols != (p.columns + d - 1) / d)
      throw DataError(path, fmt::format("decoded {} x {} pixels but the header says {} x {}{}",
                                        frame.values.rows, frame.values.cols, p.rows, p.columns,
                                        d == 1 ? "" : fmt::format(" at scale 1/{}", d)));
    info.rescale_slope = frame.slope;
    info.rescale_intercept = frame.intercept;
    info.modality_lut = frame.modality_lut;
    const bool invert = frame.monochrome && p.photometric == "MONOCHROME1";
    cv::Mat values = frame.values;  // shares the buffer: transforms below write new Mats
    if (invert) {
      // Reflect within the range the stored bits can express, so the values stay in the
      // same units and range (8-bit: v -> 255 - v).
      cv::Mat inverted;
      frame.values.convertTo(inverted, CV_32F, -1.0, frame.possible_min + frame.possible_max);
      values = inverted;
      info.notes.push_back(fmt::format("MONOCHROME1 inverted: v -> {} - v",
                                       frame.possible_min + frame.possible_max));
    }
    cv::minMaxLoc(values, &info.min_value, &info.max_value);

    if (opts.apply_window) {
      const bool given = opts.window_center && opts.window_width;
      const auto center = given ? opts.window_center : info.window_center;
      const auto width = given ? opts.window_width : info.window_width;
      if (!center || !width)
        throw DataError(path, "windowing requested but the file has no Window Center/Width and "
                              "none was given");
      if (!(*width >= 1.0))
        throw DataError(path, fmt::format("window width {} is below 1", *width));
      // The window refers to modality values before MONOCHROME1's inversion.
      cv::Mat y = window(frame.values, *center, *width);
      if (invert) y.convertTo(y, CV_32F, -1.0, 1.0);
      values = y;
    }
    result.pixels = values;
    if (const std::string text = warnings.joined(); !text.empty())
      info.notes.push_back("DCMTK warned: " + text);
  } catch (const DataError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw DataError(path, "out of memory while decoding");
  } catch (const cv::Exception& e) {
    throw DataError(path, std::string("OpenCV failed on the decoded pixels: ") + e.what());
  }
  return result;
}

// ---- writer -----------------------------------------------------------------------------

DicomUids deterministic_uids(const std::string& patient_id) {
  // DCMTK's site roots for study/series/instance UIDs, each followed by one component from a
  // stable 64-bit hash of the patient id. DCMTK's own generated UIDs have four components
  // after these roots, so the two never collide.
  const std::uint64_t h = fnv1a64("chestlab-rsna-synthetic/" + patient_id);
  const std::string suffix = std::to_string(h == 0 ? 1 : h);
  return {std::string(SITE_STUDY_UID_ROOT) + "." + suffix,
          std::string(SITE_SERIES_UID_ROOT) + "." + suffix,
          std::string(SITE_INSTANCE_UID_ROOT) + "." + suffix};
}

namespace {

void validate_write_args(const cv::Mat& gray8, const DicomWriteInfo& info, const std::string& path) {
  if (gray8.empty() || gray8.type() != CV_8UC1)
    throw std::invalid_argument("write_dicom_jpeg_baseline(" + path +
                                "): needs a non-empty CV_8UC1 image");
  if (gray8.rows > 65535 || gray8.cols > 65535)
    throw std::invalid_argument(fmt::format("write_dicom_jpeg_baseline({}): {} x {} exceeds 65535",
                                            path, gray8.rows, gray8.cols));
  if (info.patient_id.empty() || info.patient_id.size() > 64)
    throw std::invalid_argument("write_dicom_jpeg_baseline(" + path +
                                "): patient_id must have 1..64 characters");
  if (info.quality < 1 || info.quality > 100)
    throw std::invalid_argument(fmt::format(
        "write_dicom_jpeg_baseline({}): quality {} is outside 1..100", path, info.quality));
  if (info.pixel_spacing_mm < 0.0)
    throw std::invalid_argument("write_dicom_jpeg_baseline(" + path + "): negative pixel spacing");
}

class AttributeWriter {
 public:
  AttributeWriter(DcmDataset& ds, const std::string& path) : ds_(ds), path_(path) {}
  void str(const DcmTagKey& key, const std::string& value) {
    check(ds_.putAndInsertString(key, value.c_str()), key);
  }
  void u16(const DcmTagKey& key, Uint16 value) { check(ds_.putAndInsertUint16(key, value), key); }

 private:
  void check(const OFCondition& cond, const DcmTagKey& key) {
    if (cond.bad())
      throw DataError(path_, fmt::format("cannot set {}: {}", DcmTag(key).getTagName(), cond.text()));
  }
  DcmDataset& ds_;
  const std::string& path_;
};

// The attributes and order of the RSNA challenge files (img2dcm output, see docs/dicom.md).
void put_rsna_header(DcmDataset& ds, const cv::Mat& gray8, const DicomWriteInfo& info,
                     const std::string& path) {
  const DicomUids uids = deterministic_uids(info.patient_id);
  AttributeWriter w(ds, path);
  w.str(DCM_SpecificCharacterSet, "ISO_IR 100");
  w.str(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  w.str(DCM_SOPInstanceUID, uids.sop_instance);
  w.str(DCM_StudyDate, "19010101");
  w.str(DCM_StudyTime, "000000.00");
  w.str(DCM_AccessionNumber, "");
  w.str(DCM_Modality, "CR");
  w.str(DCM_ConversionType, "WSD");
  w.str(DCM_ReferringPhysicianName, "");
  w.str(DCM_SeriesDescription, "view: " + info.view_position);
  w.str(DCM_PatientName, info.patient_name.empty() ? info.patient_id : info.patient_name);
  w.str(DCM_PatientID, info.patient_id);
  w.str(DCM_PatientBirthDate, "");
  w.str(DCM_PatientSex, info.patient_sex);
  w.str(DCM_PatientAge, info.patient_age);
  w.str(DCM_BodyPartExamined, info.body_part);
  w.str(DCM_ViewPosition, info.view_position);
  w.str(DCM_StudyInstanceUID, uids.study);
  w.str(DCM_SeriesInstanceUID, uids.series);
  w.str(DCM_StudyID, "");
  w.str(DCM_SeriesNumber, "1");
  w.str(DCM_InstanceNumber, "1");
  w.str(DCM_PatientOrientation, "");
  w.u16(DCM_SamplesPerPixel, 1);
  w.str(DCM_PhotometricInterpretation, "MONOCHROME2");
  w.u16(DCM_Rows, static_cast<Uint16>(gray8.rows));
  w.u16(DCM_Columns, static_cast<Uint16>(gray8.cols));
  if (info.pixel_spacing_mm > 0.0) {
    const std::string s = fmt::format("{:.6g}", info.pixel_spacing_mm);
    w.str(DCM_PixelSpacing, s + "\\" + s);
  }
  w.u16(DCM_BitsAllocated, 8);
  w.u16(DCM_BitsStored, 8);
  w.u16(DCM_HighBit, 7);
  w.u16(DCM_PixelRepresentation, 0);
}

}  // namespace

void write_dicom_jpeg_baseline(const std::string& path, const cv::Mat& gray8,
                               const DicomWriteInfo& info) {
  validate_write_args(gray8, info, path);
  ensure_dcmtk_ready();
  DcmtkMessages log;
  DcmFileFormat ff;
  DcmDataset& ds = *ff.getDataset();
  put_rsna_header(ds, gray8, info, path);
  const cv::Mat pixels = gray8.isContinuous() ? gray8 : gray8.clone();
  OFCondition cond = ds.putAndInsertUint8Array(DCM_PixelData, pixels.ptr<Uint8>(),
                                               static_cast<unsigned long>(pixels.total()));
  if (cond.bad()) throw DataError(path, std::string("cannot store the pixels: ") + cond.text());

  DJ_RPLossy params(info.quality);
  cond = ds.chooseRepresentation(EXS_JPEGProcess1, &params);
  if (cond.bad() || !ds.canWriteXfer(EXS_JPEGProcess1))
    throw DataError(path, std::string("JPEG Baseline encoding failed: ") + cond.text() + log.suffix());
  // The encoder documents its work in Derivation Description/Code Sequence and the ratio;
  // the RSNA files carry only the two Lossy Image Compression attributes.
  ds.findAndDeleteElement(DCM_DerivationDescription);
  ds.findAndDeleteElement(DCM_DerivationCodeSequence);
  ds.findAndDeleteElement(DCM_LossyImageCompressionRatio);
  ds.findAndDeleteElement(DCM_ImageType);
  AttributeWriter w(ds, path);
  w.str(DCM_LossyImageCompression, "01");
  w.str(DCM_LossyImageCompressionMethod, "ISO_10918_1");

  cond = ff.saveFile(OFFilename(path.c_str()), EXS_JPEGProcess1, EET_ExplicitLength, EGL_withoutGL,
                     EPD_noChange, 0, 0, EWM_fileformat);
  if (cond.bad())
    throw DataError(path, std::string("cannot write the DICOM file: ") + cond.text() + log.suffix());
}

}  // namespace chestlab

// DICOM reading and writing through DCMTK (torch-free, in the imaging package).
//
// Reading decodes every transfer syntax DCMTK 3.6 decodes (implicit/explicit little endian,
// explicit big endian, deflate, JPEG baseline/extended/lossless, JPEG-LS, RLE, files without
// a File Meta header) into a CV_32F image of modality values (Rescale Slope/Intercept
// applied; CT comes out in Hounsfield units). MONOCHROME1 is inverted so that larger is
// always brighter; RGB/YBR is converted to grey. JPEG 2000 is not decodable by the free
// DCMTK: such files fail with an error naming the transfer syntax.
//
// Every failure - missing, empty, truncated, random bytes, inconsistent or hostile header,
// undecodable pixels - is a chestlab::DataError(path, reason); DCMTK's own log messages are
// silenced and folded into the reason. read_dicom may be called from many threads at once.
//
// See docs/dicom.md for the exact conventions.
#pragma once

#include <opencv2/core.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace chestlab {

// What to do with a file holding several frames.
enum class MultiFramePolicy {
  first,  // return frame 1 and say so in DicomInfo::notes
  error,  // DataError naming the frame count
};

// "first" or "error"; anything else is a ConfigError listing the allowed values.
MultiFramePolicy parse_multiframe_policy(const std::string& text);
const char* to_string(MultiFramePolicy policy);

// Images larger than this in either direction are refused before any pixel is decoded.
constexpr int kMaxDicomDimension = 16384;

struct DicomReadOptions {
  MultiFramePolicy multiframe = MultiFramePolicy::first;
  // Map the modality values through the DICOM linear VOI window to [0, 1] (after which
  // MONOCHROME1 becomes 1 - y). Uses window_center/window_width when both are set, else the
  // file's first Window Center/Width; a DataError when neither is available.
  bool apply_window = false;
  std::optional<double> window_center;
  std::optional<double> window_width;
  // JPEG fast path (docs/dicom.md): a single-frame, 8-bit unsigned, MONOCHROME1/2 JPEG
  // Baseline or Extended file is decoded by libjpeg-turbo instead of DCMTK, scaled down in
  // the DCT domain by the smallest of 1, 1/2, 1/4, 1/8 whose result still has at least
  // min_rows x min_columns pixels (0: that axis at full size); the caller resizes the rest of the way.
  // Every other file, and any file libjpeg-turbo refuses, is decoded exactly by DCMTK. The
  // values are the exact path's (rescale, inversion, window) up to the decoders' rounding
  // and the downscale; pixels may then be smaller than info.rows x info.columns, and
  // info.notes says by which scale.
  bool fast_jpeg = false;
  int min_rows = 0;
  int min_columns = 0;
};

struct DicomInfo {
  int rows = 0;
  int columns = 0;
  int frames = 1;  // Number of Frames in the file (only one is returned)
  int samples_per_pixel = 1;
  int bits_allocated = 0;
  int bits_stored = 0;
  int high_bit = 0;
  int pixel_representation = 0;  // 0 unsigned, 1 two's complement
  std::string transfer_syntax_uid;
  std::string transfer_syntax_name;  // DCMTK's name, e.g. "JPEG Baseline"
  bool has_file_meta = true;          // false for bare data sets ("no_meta" files)
  std::string photometric_interpretation;
  double rescale_slope = 1.0;
  double rescale_intercept = 0.0;
  bool modality_lut = false;  // a Modality LUT Sequence was applied instead of slope/intercept
  // The file's first window, if it has one (in modality units, before any inversion).
  std::optional<double> window_center;
  std::optional<double> window_width;
  // Range of the returned frame after rescale (and MONOCHROME1 inversion), before windowing.
  double min_value = 0.0;
  double max_value = 0.0;
  // Header attributes a user asks about, by DICOM keyword (PatientID, PatientSex,
  // PatientAge, ViewPosition, PixelSpacing, Modality, SOPClassUID, ...); only those present.
  // Multi-valued attributes keep DICOM's backslash separator ("0.168\0.168").
  std::map<std::string, std::string> metadata;
  // What the reader did beyond plain decoding (frame taken, colour conversion, inversion,
  // recovery from stray bytes, ...), one sentence each.
  std::vector<std::string> notes;
};

struct DicomImage {
  cv::Mat pixels;  // CV_32F, rows x columns (smaller on the JPEG fast path), one channel
  DicomInfo info;
};

// Decodes the file's (first) frame. Throws chestlab::DataError(path, reason) on any failure.
DicomImage read_dicom(const std::string& path, const DicomReadOptions& opts = {});

// Header attributes for a synthetic RSNA-style radiograph (Secondary Capture, CR).
struct DicomWriteInfo {
  std::string patient_id;     // required; also seeds the deterministic UIDs
  std::string patient_name;   // empty: the patient id (as in the RSNA files)
  std::string patient_sex;    // "M", "F", "O" or empty
  std::string patient_age;    // written verbatim, RSNA style ("62"); empty allowed
  std::string view_position;  // "PA", "AP" or empty; also gives SeriesDescription "view: PA"
  double pixel_spacing_mm = 0.0;  // isotropic spacing; 0 leaves Pixel Spacing out
  std::string body_part = "CHEST";
  int quality = 95;  // IJG quality factor, 1..100
};

// Writes `gray8` (CV_8UC1, at most 65535 x 65535) as an 8-bit MONOCHROME2 JPEG Baseline
// (1.2.840.10008.1.2.4.50) Secondary Capture CR file shaped like the RSNA challenge files.
// Deterministic: the same inputs give byte-identical files (UIDs derive from patient_id).
// Bad arguments throw std::invalid_argument; encoding or I/O failures DataError(path, ...).
void write_dicom_jpeg_baseline(const std::string& path, const cv::Mat& gray8,
                               const DicomWriteInfo& info);

// The Study/Series/SOP Instance UIDs write_dicom_jpeg_baseline uses for a patient id.
struct DicomUids {
  std::string study;
  std::string series;
  std::string sop_instance;
};
DicomUids deterministic_uids(const std::string& patient_id);

}  // namespace chestlab

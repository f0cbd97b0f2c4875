// TensorBoard event files: scalar summaries as TensorBoard reads them, written and read
// back without TensorFlow. A file is a sequence of TFRecords (a little-endian uint64 length,
// the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data), each
// holding one serialised Event (framework/engine/proto/tensorboard_event.proto, TensorBoard's
// field numbers); the first one carries the file version "brain.Event:2".
//
// Domain-free and without LibTorch; the protobuf-generated code stays inside the engine's
// sources, so including this header costs nothing. docs/tensorboard.md describes the files
// chestlab writes with it (folders, tags, what happens on resume).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace chestlab::tensorboard {

// CRC-32C (Castagnoli), as TFRecord uses it: crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::string_view bytes);
// TFRecord's masked form: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
std::uint32_t masked_crc32c(std::string_view bytes);
// One TFRecord holding `data`.
std::string frame_record(std::string_view data);

struct Scalar {
  std::string tag;  // "train/loss"
  float value = 0;
};

// The events chestlab writes and reads: a file version, or scalars at a step.
struct Event {
  double wall_time = 0;      // seconds since the Unix epoch
  std::int64_t step = 0;
  std::string file_version;  // "brain.Event:2" in a file's first event, "" otherwise
  std::vector<Scalar> scalars;  // the summary's values that hold a simple_value
};

// The serialised Event message (what a record's data holds).
std::string encode_event(const Event& event);
// False when `bytes` is not an Event message.
bool decode_event(std::string_view bytes, Event& event);

// What an event file holds, read the way TensorBoard reads it: record after record, both CRCs
// checked, each record's data parsed as an Event. Reading stops at the first record that is
// cut short (a writer killed mid-record), fails a CRC or does not parse.
struct EventRecord {
  std::uint64_t offset = 0;  // where the record starts in the file
  Event event;
};
struct EventFileContents {
  std::vector<EventRecord> records;  // every good record before the first bad one
  std::uint64_t good_bytes = 0;      // the end of the last good record
  std::uint64_t file_bytes = 0;
  std::string problem;               // why reading stopped before the end; "" when it did not
};
// Throws std::runtime_error naming the file when it cannot be read at all.
EventFileContents read_event_file(const std::string& path);

// TensorBoard reads every file of a folder whose name contains "tfevents".
bool is_event_file_name(const std::string& file_name);
// The event files directly in `dir`, sorted by name (for chestlab's names: by creation time);
// none when `dir` does not exist.
std::vector<std::string> event_files(const std::string& dir);

// Trims the event files of `dir` to the events `keep` accepts: each file is cut (truncated)
// before its first event that `keep` refuses or its first bad record, and a file left with
// no summary at all is removed. The file version events are kept without asking `keep`.
// Returns the events kept, file by file, in order. Every step of it leaves readable files, so
// a process killed while it prunes leaves nothing that a second prune cannot finish.
std::vector<Event> prune_event_files(const std::string& dir, const std::function<bool(const Event&)>& keep);

// Seconds since the Unix epoch, as event wall times are.
double wall_time_now();

// Writes one new event file: events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n> in `dir`
// (created as needed), starting with the file version event. Every event goes to the file in
// one write(2) as soon as it is written: what a process killed at any moment leaves is whole
// records and at most one torn record at the end. Not thread-safe. Errors throw
// std::runtime_error naming the file.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::string& dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // One event holding `scalars` at `step`.
  void write_scalars(std::int64_t step, const std::vector<Scalar>& scalars, double wall_time = wall_time_now());
  void write(const Event& event);

  const std::string& path() const { return path_; }
  std::uint64_t bytes_written() const { return bytes_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t bytes_ = 0;
};

}  // namespace chestlab::tensorboard

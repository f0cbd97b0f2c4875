// TensorBoard event files: TFRecord framing with Boost.CRC's CRC-32C, the Event messages of
// proto/tensorboard_event.proto (protoc-generated, lite runtime), one write(2) per event.
#include "chestlab/engine/tensorboard.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/crc.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "tensorboard_event.pb.h"

namespace fs = std::filesystem;

namespace chestlab::tensorboard {

namespace {

using Crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

constexpr const char* kFileVersion = "brain.Event:2";
constexpr std::size_t kHeaderBytes = 12;  // length (8) + masked CRC of the length (4)
constexpr std::size_t kFooterBytes = 4;   // masked CRC of the data

void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t get_le(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)])) << (8 * i);
  return value;
}

std::string error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

std::string host_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
  std::string name = host;
  // The name is a file name component: keep it to characters that are safe everywhere.
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return name;
}

std::atomic<int> g_files_made{0};

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
  Crc32c crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

std::uint32_t masked_crc32c(std::string_view bytes) {
  const std::uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(kHeaderBytes + data.size() + kFooterBytes);
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(std::string_view(out.data(), 8)), 4);
  out.append(data.data(), data.size());
  put_le(out, masked_crc32c(data), 4);
  return out;
}

std::string encode_event(const Event& event) {
  proto::Event message;
  message.set_wall_time(event.wall_time);
  message.set_step(event.step);
  if (!event.file_version.empty()) {
    message.set_file_version(event.file_version);
    message.mutable_source_metadata()->set_writer("chestlab");
  } else {
    proto::Summary* summary = message.mutable_summary();
    for (const Scalar& s : event.scalars) {
      proto::Summary::Value* value = summary->add_value();
      value->set_tag(s.tag);
      value->set_simple_value(s.value);
    }
  }
  std::string bytes;
  if (!message.SerializeToString(&bytes)) throw std::runtime_error("tensorboard: cannot serialise an event");
  return bytes;
}

bool decode_event(std::string_view bytes, Event& event) {
  proto::Event message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  event = Event{};
  event.wall_time = message.wall_time();
  event.step = message.step();
  if (message.has_file_version()) event.file_version = message.file_version();
  if (message.has_summary())
    for (const proto::Summary::Value& v : message.summary().value())
      if (v.has_simple_value()) event.scalars.push_back({v.tag(), v.simple_value()});
  return true;
}

EventFileContents read_event_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the event file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": cannot read the event file");
  EventFileContents contents;
  contents.file_bytes = bytes.size();
  const std::string_view all(bytes);
  std::size_t at = 0;
  while (at < all.size()) {
    if (all.size() - at < kHeaderBytes) {
      contents.problem = fmt::format("a record at byte {} is cut short (its header)", at);
      break;
    }
    const std::uint64_t length = get_le(all, at, 8);
    if (get_le(all, at + 8, 4) != masked_crc32c(all.substr(at, 8))) {
      contents.problem = fmt::format("the length of the record at byte {} fails its CRC", at);
      break;
    }
    if (length > all.size() - at - kHeaderBytes || all.size() - at - kHeaderBytes - length < kFooterBytes) {
      contents.problem = fmt::format("the record at byte {} is cut short ({} bytes of data announced)", at, length);
      break;
    }
    const std::string_view data = all.substr(at + kHeaderBytes, length);
    if (get_le(all, at + kHeaderBytes + length, 4) != masked_crc32c(data)) {
      contents.problem = fmt::format("the data of the record at byte {} fails its CRC", at);
      break;
    }
    EventRecord record;
    record.offset = at;
    if (!decode_event(data, record.event)) {
      contents.problem = fmt::format("the record at byte {} is not an Event", at);
      break;
    }
    contents.records.push_back(std::move(record));
    at += kHeaderBytes + length + kFooterBytes;
    contents.good_bytes = at;
  }
  return contents;
}

bool is_event_file_name(const std::string& file_name) { return file_name.find("tfevents") != std::string::npos; }

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && is_event_file_name(entry.path().filename().string()))
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Event> prune_event_files(const std::string& dir, const std::function<bool(const Event&)>& keep) {
  std::vector<Event> kept;
  for (const std::string& path : event_files(dir)) {
    EventFileContents contents = read_event_file(path);
    std::uint64_t cut = contents.good_bytes;  // before a bad record, if any
    std::size_t summaries = 0;
    for (const EventRecord& r : contents.records) {
      if (r.event.file_version.empty() && !keep(r.event)) {
        cut = r.offset;
        break;
      }
      if (r.event.file_version.empty()) {
        kept.push_back(r.event);
        ++summaries;
      }
    }
    if (summaries == 0) {
      std::error_code ec;
      fs::remove(path, ec);
      if (ec) throw std::runtime_error(fmt::format("{}: cannot remove the event file: {}", path, ec.message()));
    } else if (cut < contents.file_bytes) {
      if (::truncate(path.c_str(), static_cast<off_t>(cut)) != 0)
        throw std::runtime_error(fmt::format("{}: cannot truncate the event file: {}", path, error_text(errno)));
    }
  }
  return kept;
}

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

EventFileWriter::EventFileWriter(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot create the event folder: {}", dir, ec.message()));
  const auto seconds = static_cast<long long>(wall_time_now());
  const std::string host = host_name();
  for (int attempt = 0; fd_ < 0; ++attempt) {
    path_ = (fs::path(dir) / fmt::format("events.out.tfevents.{}.{}.{}.{}", seconds, host, static_cast<long>(getpid()),
                                         g_files_made.fetch_add(1)))
                .string();
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || attempt > 1000))
      throw std::runtime_error(fmt::format("{}: cannot create the event file: {}", path_, error_text(errno)));
  }
  Event version;
  version.wall_time = wall_time_now();
  version.file_version = kFileVersion;
  write(version);
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::write_scalars(std::int64_t step, const std::vector<Scalar>& scalars, double wall_time) {
  Event event;
  event.wall_time = wall_time;
  event.step = step;
  event.scalars = scalars;
  write(event);
}

void EventFileWriter::write(const Event& event) {
  const std::string record = frame_record(encode_event(event));
  std::size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(fmt::format("{}: cannot write the event file: {}", path_, error_text(errno)));
    done += static_cast<std::size_t>(n);
  }
  bytes_ += record.size();
}

}  // namespace chestlab::tensorboard

// TensorBoard event files: the TFRecord framing (CRC-32C of a known vector, the masked CRCs,
// the byte layout), events written and read back, torn and damaged records, pruning.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "chestlab/engine/tensorboard.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab::tensorboard;
using Catch::Matchers::Contains;

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void append_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

std::uint32_t le32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

}  // namespace

TEST_CASE("tensorboard: CRC-32C and TFRecord framing", "[tensorboard]") {
  // The check value of CRC-32C (Castagnoli), and the masking of TFRecord.
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  const std::uint32_t c = 0xE3069283u;
  CHECK(masked_crc32c("123456789") == static_cast<std::uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
  // 32 bytes of zeros: the published CRC-32C test vector (RFC 3720, B.4).
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);

  const std::string record = frame_record("abc");
  REQUIRE(record.size() == 8 + 4 + 3 + 4);
  CHECK(record.substr(0, 8) == std::string("\x03\0\0\0\0\0\0\0", 8));  // uint64 length, little-endian
  CHECK(le32(record, 8) == masked_crc32c(record.substr(0, 8)));
  CHECK(record.substr(12, 3) == "abc");
  CHECK(le32(record, 15) == masked_crc32c("abc"));
}

TEST_CASE("tensorboard: events encode with TensorBoard's field numbers", "[tensorboard]") {
  Event e;
  e.wall_time = 1.5;
  e.step = 3;
  e.scalars = {{"a", 0.25f}};
  const std::string bytes = encode_event(e);
  // wall_time (1, fixed64 double), step (2, varint), summary (5, bytes) holding value (1,
  // bytes) holding tag (1, bytes) and simple_value (2, fixed32 float).
  const std::string expected = std::string("\x09\0\0\0\0\0\0\xf8\x3f", 9) + std::string("\x10\x03", 2) +
                               std::string("\x2a\x0a\x0a\x08\x0a\x01" "a" "\x15\0\0\x80\x3e", 12);
  CHECK(bytes == expected);
  Event back;
  REQUIRE(decode_event(bytes, back));
  CHECK(back.wall_time == 1.5);
  CHECK(back.step == 3);
  REQUIRE(back.scalars.size() == 1);
  CHECK(back.scalars[0].tag == "a");
  CHECK(back.scalars[0].value == 0.25f);

  Event version;
  version.file_version = "brain.Event:2";
  REQUIRE(decode_event(encode_event(version), back));
  CHECK(back.file_version == "brain.Event:2");
  CHECK(back.scalars.empty());
  CHECK_FALSE(decode_event(std::string("\xff\xff\xff", 3), back));
}

TEST_CASE("tensorboard: a writer's file reads back, and a torn or damaged record ends the reading there",
          "[tensorboard]") {
  const fs::path dir = chestlab::test::scratch_dir("tensorboard_writer");
  std::string path;
  {
    EventFileWriter w((dir / "fold0").string());
    path = w.path();
    w.write_scalars(0, {{"train/loss", 0.5f}, {"val/loss", 0.75f}}, 100.0);
    w.write_scalars(1, {{"train/loss", 0.25f}}, 101.0);
    CHECK(w.bytes_written() == fs::file_size(path));
  }
  CHECK(fs::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
  CHECK(event_files((dir / "fold0").string()) == std::vector<std::string>{path});
  CHECK(is_event_file_name("x.tfevents.y"));
  CHECK_FALSE(is_event_file_name("notes.txt"));

  EventFileContents c = read_event_file(path);
  CHECK(c.problem.empty());
  REQUIRE(c.records.size() == 3);
  CHECK(c.records[0].event.file_version == "brain.Event:2");
  CHECK(c.records[0].offset == 0);
  CHECK(c.records[1].event.step == 0);
  CHECK(c.records[1].event.wall_time == 100.0);
  REQUIRE(c.records[1].event.scalars.size() == 2);
  CHECK(c.records[1].event.scalars[1].tag == "val/loss");
  CHECK(c.records[1].event.scalars[1].value == 0.75f);
  CHECK(c.good_bytes == c.file_bytes);

  const std::string whole = file_bytes(path);
  const std::uint64_t end_of_second = c.records[2].offset;
  SECTION("a record cut short (a writer killed mid-record)") {
    for (std::size_t cut : {std::size_t{1}, std::size_t{11}, std::size_t{12}, whole.size() - end_of_second - 1}) {
      INFO("cut at " << cut);
      std::ofstream(path, std::ios::binary | std::ios::trunc) << whole.substr(0, end_of_second + cut);
      EventFileContents torn = read_event_file(path);
      CHECK(torn.records.size() == 2);
      CHECK(torn.good_bytes == end_of_second);
      CHECK_THAT(torn.problem, Contains("cut short"));
    }
  }
  SECTION("a flipped bit in the data or in the length") {
    std::string bad = whole;
    bad[end_of_second + 14] ^= 0x01;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    CHECK(read_event_file(path).records.size() == 2);
    CHECK_THAT(read_event_file(path).problem, Contains("data") && Contains("CRC"));
    bad = whole;
    bad[end_of_second + 1] ^= 0x40;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    CHECK_THAT(read_event_file(path).problem, Contains("length") && Contains("CRC"));
  }
  SECTION("a record whose data is not an Event") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << whole.substr(0, end_of_second)
                                                            << frame_record(std::string("\xff\xff", 2));
    CHECK(read_event_file(path).records.size() == 2);
    CHECK_THAT(read_event_file(path).problem, Contains("not an Event"));
  }
  CHECK_THROWS_WITH(read_event_file((dir / "absent").string()), Contains("cannot open"));
}

TEST_CASE("tensorboard: pruning keeps what `keep` accepts, cuts damaged tails, removes empty files",
          "[tensorboard]") {
  const fs::path dir = chestlab::test::scratch_dir("tensorboard_prune");
  std::string first, second, third;
  {
    EventFileWriter a(dir.string());
    first = a.path();
    for (int step = 0; step < 4; ++step) a.write_scalars(step, {{"loss", static_cast<float>(step)}});
  }
  {
    EventFileWriter b(dir.string());
    second = b.path();
    b.write_scalars(9, {{"loss", 9.0f}});
  }
  {
    EventFileWriter c(dir.string());
    third = c.path();
    c.write_scalars(1, {{"loss", 1.5f}});
  }
  append_bytes(third, frame_record("torn").substr(0, 7));  // a torn tail
  REQUIRE(event_files(dir.string()).size() == 3);
  const auto kept = prune_event_files(dir.string(), [](const Event& e) { return e.step < 2; });
  // The first file cut after step 1; the second (only step 9) removed; the third's tail cut.
  REQUIRE(kept.size() == 3);
  CHECK(kept[0].step == 0);
  CHECK(kept[1].step == 1);
  CHECK(kept[2].scalars[0].value == 1.5f);
  CHECK(event_files(dir.string()) == std::vector<std::string>{first, third});
  for (const std::string& f : {first, third}) {
    const EventFileContents c = read_event_file(f);
    CHECK(c.problem.empty());
    CHECK(c.good_bytes == c.file_bytes);
  }
  CHECK(read_event_file(first).records.size() == 3);  // version, steps 0 and 1
  // Pruning again changes nothing; pruning everything away removes every file.
  CHECK(prune_event_files(dir.string(), [](const Event& e) { return e.step < 2; }).size() == 3);
  CHECK(prune_event_files(dir.string(), [](const Event&) { return false; }).empty());
  CHECK(event_files(dir.string()).empty());
  CHECK(prune_event_files((dir / "absent").string(), [](const Event&) { return true; }).empty());
}

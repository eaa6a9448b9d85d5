#include "train/tensorboard_writer.h"

#include <catch2/catch.hpp>

#include <dirent.h>

#include <cstring>
#include <vector>

#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/temp_dir.h"
#include "event.pb.h"

namespace tessel {
namespace {

uint64_t load_le(const std::string& s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  return v;
}

// Splits a TFRecord file into its payloads, checking both CRCs of every frame (the second
// decoding path: this reader shares only crc32c with the writer).
std::vector<std::string> read_records(const std::string& bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    REQUIRE(pos + 12 <= bytes.size());
    const uint64_t length = load_le(bytes, pos, 8);
    CHECK(crc32c_unmask(static_cast<uint32_t>(load_le(bytes, pos + 8, 4))) == crc32c(bytes.data() + pos, 8));
    REQUIRE(pos + 12 + length + 4 <= bytes.size());
    const std::string data = bytes.substr(pos + 12, length);
    CHECK(crc32c_unmask(static_cast<uint32_t>(load_le(bytes, pos + 12 + length, 4))) ==
          crc32c(data.data(), data.size()));
    out.push_back(data);
    pos += 12 + length + 4;
  }
  return out;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
  closedir(d);
  return names;
}

// Expected bytes computed independently in Python (struct + a bit-at-a-time crc32c):
//   def crc32c(b): c = 0xFFFFFFFF; for x in b: c ^= x; 8x: c = (c>>1) ^ (0x82F63B78 if c&1 else 0)
//                  return c ^ 0xFFFFFFFF
//   mask = lambda c: (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
//   frame(d) = L + pack('<I', mask(crc32c(L))) + d + pack('<I', mask(crc32c(d))), L = pack('<Q', len(d))
// with the protobuf wire bytes written out by hand:
//   first  = 09 <f64 1700000000.5> 1a 0d "brain.Event:2"
//   scalar = 09 <f64 1700000000.5> 10 07 2a 0d 0a 0b 0a 04 "loss" 15 <f32 2.5>
const unsigned char kFirstRecord[] = {0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa3, 0x7f,
                                      0x4b, 0x22, 0x09, 0x00, 0x00, 0x20, 0x40, 0xfc, 0x54, 0xd9,
                                      0x41, 0x1a, 0x0d, 0x62, 0x72, 0x61, 0x69, 0x6e, 0x2e, 0x45,
                                      0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32, 0x2b, 0x35, 0x31, 0x10};
const unsigned char kLossRecord[] = {0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x9b, 0xd8,
                                     0x2d, 0x09, 0x00, 0x00, 0x20, 0x40, 0xfc, 0x54, 0xd9, 0x41, 0x10,
                                     0x07, 0x2a, 0x0d, 0x0a, 0x0b, 0x0a, 0x04, 0x6c, 0x6f, 0x73, 0x73,
                                     0x15, 0x00, 0x00, 0x20, 0x40, 0x94, 0x23, 0xef, 0xb0};

TEST_CASE("TensorBoard file bytes match an independently computed encoding", "[tensorboard]") {
  TempDir dir;
  std::string path;
  {
    TensorBoardWriter writer(dir.path(), [] { return 1700000000.5; });
    writer.add_scalar("loss", 2.5f, 7);
    path = writer.path();
  }  // the destructor flushes
  const std::string want = std::string(reinterpret_cast<const char*>(kFirstRecord), sizeof(kFirstRecord)) +
                           std::string(reinterpret_cast<const char*>(kLossRecord), sizeof(kLossRecord));
  CHECK(read_file(path) == want);
}

TEST_CASE("TensorBoard writer names its file as TensorBoard expects", "[tensorboard]") {
  TempDir dir;
  const std::string log_dir = dir.file("runs/exp1");  // created, parents included
  TensorBoardWriter a(log_dir, [] { return 1700000000.5; });
  TensorBoardWriter b(log_dir, [] { return 1700000000.5; });  // same second: must not collide
  CHECK(a.path().rfind(log_dir + "/events.out.tfevents.1700000000.", 0) == 0);
  CHECK(a.path().size() > 7);
  CHECK(a.path().substr(a.path().size() - 7) == ".tessel");
  CHECK(b.path() != a.path());
  CHECK(list_dir(log_dir).size() == 2);
  // The first record is on disk as soon as the writer exists.
  CHECK(read_records(read_file(a.path())).size() == 1);
}

TEST_CASE("TensorBoard records carry tags, values and steps, with valid CRCs", "[tensorboard]") {
  TempDir dir;
  double now = 1700000100.0;
  TensorBoardWriter writer(dir.path(), [&now] { return now += 0.25; });
  const std::vector<std::tuple<std::string, float, int64_t>> scalars = {{"train/loss", 3.25f, 1},
                                                                        {"train/lr", 6e-4f, 1},
                                                                        {"train/loss", 2.875f, 2},
                                                                        {"val/loss", -0.5f, 1000000000000LL}};
  for (const auto& [tag, value, step] : scalars) writer.add_scalar(tag, value, step);
  writer.flush();

  const std::vector<std::string> records = read_records(read_file(writer.path()));
  REQUIRE(records.size() == 1 + scalars.size());
  tensorboard::Event first;
  REQUIRE(first.ParseFromString(records[0]));
  CHECK(first.file_version() == "brain.Event:2");
  CHECK(first.wall_time() == 1700000100.25);
  for (size_t i = 0; i < scalars.size(); ++i) {
    tensorboard::Event e;
    REQUIRE(e.ParseFromString(records[i + 1]));
    REQUIRE(e.has_summary());
    REQUIRE(e.summary().value_size() == 1);
    CHECK(e.summary().value(0).tag() == std::get<0>(scalars[i]));
    CHECK(e.summary().value(0).simple_value() == std::get<1>(scalars[i]));  // exact: f32 stored
    CHECK(e.step() == std::get<2>(scalars[i]));
    CHECK(e.wall_time() == 1700000100.25 + 0.25 * double(i + 1));
  }
}

TEST_CASE("tfrecord_frame CRCs match the TensorBoard check value", "[tensorboard]") {
  const std::string framed = tfrecord_frame("123456789");
  REQUIRE(framed.size() == 8 + 4 + 9 + 4);
  CHECK(load_le(framed, 0, 8) == 9);
  CHECK(load_le(framed, 21, 4) == 0xC78AB0E5u);  // masked crc32c("123456789")
  CHECK(framed.substr(12, 9) == "123456789");
}

TEST_CASE("TensorBoard writer reports a log dir it cannot create", "[tensorboard]") {
  TempDir dir;
  write_file_atomic(dir.file("file"), "x");
  CHECK_THROWS_WITH(TensorBoardWriter(dir.file("file/sub")), Catch::Contains(dir.file("file")));
}

}  // namespace
}  // namespace tessel

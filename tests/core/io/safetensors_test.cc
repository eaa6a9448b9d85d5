#include "core/io/safetensors.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/temp_dir.h"

namespace tessel {
namespace {

template <typename T>
Tensor iota_tensor(const Shape& shape, DType dtype, int start) {
  Tensor t = Tensor::empty(shape, dtype);
  T* p = static_cast<T*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(start + 3 * i);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A safetensors file from a literal header and `data_bytes` bytes of data.
std::string write_raw(const TempDir& dir, const std::string& name, const std::string& header, size_t data_bytes) {
  std::string path = dir.file(name);
  write_file_atomic(path, u64_le(header.size()) + header + std::string(data_bytes, '\x01'));
  return path;
}

TEST_CASE("safetensors round trip keeps dtypes, shapes, bytes and metadata", "[io][safetensors]") {
  TempDir dir;
  std::map<std::string, Tensor> tensors = {
      {"w.f32", iota_tensor<float>({2, 3}, DType::F32, 1)},
      {"w.bf16", iota_tensor<uint16_t>({4}, DType::BF16, 0x3f80)},
      {"w.f16", iota_tensor<uint16_t>({3, 1}, DType::F16, 0x3c00)},
      {"tokens", iota_tensor<int32_t>({5}, DType::I32, -7)},
      {"big", iota_tensor<int64_t>({2, 2}, DType::I64, 1 << 30)},
      {"u16", iota_tensor<uint16_t>({3}, DType::U16, 60000)},
      {"bytes", iota_tensor<uint8_t>({7}, DType::U8, 5)},
      {"scalar", iota_tensor<float>({}, DType::F32, 42)},
      {"empty", Tensor::empty({0, 4}, DType::F32)},
  };
  SafetensorsWriter writer;
  for (const auto& [name, t] : tensors) writer.add(name, t);
  writer.set_metadata("step", "100");
  const std::string path = dir.file("model.safetensors");
  writer.write(path);

  SafetensorsFile file(path);
  CHECK(file.header_bytes() % 8 == 0);
  CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"step", "100"}});
  std::vector<std::string> want_names;
  for (const auto& entry : tensors) want_names.push_back(entry.first);
  CHECK(file.names() == want_names);  // sorted
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {  // written in name order, contiguous
    INFO(name);
    REQUIRE(file.has(name));
    const SafetensorsTensorInfo& info = file.info(name);
    CHECK(info.dtype_name == dtype_name(t.dtype()));
    CHECK(info.begin == offset);
    offset = info.end;
    const Tensor back = file.get(name);
    CHECK(same_bytes(back, t));
    CHECK(back.device().is_cpu());
  }
  CHECK(read_file(path).size() == 8 + file.header_bytes() + offset);
  CHECK_FALSE(file.has("nope"));
  CHECK_THROWS_WITH(file.get("nope"), Catch::Contains(path) && Catch::Contains("\"nope\""));
}

TEST_CASE("safetensors writer output is byte-exact for one tiny tensor", "[io][safetensors]") {
  TempDir dir;
  SafetensorsWriter writer;
  writer.add("a", Tensor::from_vector<float>({1.0f, 2.0f}, {2}));
  const std::string path = dir.file("tiny.safetensors");
  writer.write(path);
  // 85 bytes of JSON + 3 spaces of padding = 88 = 0x58; 1.0f = 0x3f800000, 2.0f = 0x40000000.
  const std::string json = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"
                           "   ";
  const std::string want =
      std::string("\x58\0\0\0\0\0\0\0", 8) + json + std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  CHECK(read_file(path) == want);
  CHECK(writer.header() == json);
}

TEST_CASE("safetensors reader accepts other writers' dtypes and spacing", "[io][safetensors]") {
  TempDir dir;
  // Header in another order, with whitespace, an F64 tensor Tessel cannot hold and a BF16 one.
  const std::string header = R"({ "b": {"dtype": "BF16", "shape": [2], "data_offsets": [8, 12]},)"
                             R"( "d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]} }   )";
  const std::string path = write_raw(dir, "other.safetensors", header, 12);
  SafetensorsFile file(path);
  CHECK(file.names() == std::vector<std::string>{"b", "d"});
  CHECK(file.metadata().empty());
  CHECK(file.get("b").shape() == Shape{2});
  CHECK_FALSE(file.info("d").dtype.has_value());
  CHECK(file.info("d").element_size == 8);
  CHECK_THROWS_WITH(file.get("d"), Catch::Contains(path) && Catch::Contains("F64"));
}

TEST_CASE("corrupt safetensors files raise errors naming the file and the problem", "[io][safetensors]") {
  TempDir dir;
  SafetensorsWriter writer;
  writer.add("x", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}));
  const std::string good = dir.file("good.safetensors");
  writer.write(good);
  const std::string bytes = read_file(good);

  SECTION("truncated file") {
    const std::string path = dir.file("truncated.safetensors");
    write_file_atomic(path, bytes.substr(0, bytes.size() - 4));
    CHECK_THROWS_WITH(SafetensorsFile(path),
                      Catch::Contains(path) && Catch::Contains("expected " + std::to_string(bytes.size())));
  }
  SECTION("file shorter than the length field") {
    const std::string path = dir.file("tiny.safetensors");
    write_file_atomic(path, "abc");
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("too small"));
  }
  SECTION("header length over the 100 MB limit") {
    const std::string path = dir.file("huge.safetensors");
    write_file_atomic(path, u64_le(1ull << 40) + bytes.substr(8));
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("limit"));
  }
  SECTION("header length past the end of the file") {
    const std::string path = dir.file("long.safetensors");
    write_file_atomic(path, u64_le(bytes.size()) + bytes.substr(8));
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("past the end"));
  }
  SECTION("header not starting with {") {
    const std::string path = write_raw(dir, "notjson.safetensors", " {}     ", 0);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("'{'"));
  }
  SECTION("invalid JSON") {
    const std::string path = write_raw(dir, "badjson.safetensors", "{\"a\": [}", 0);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("byte 7"));
  }
  SECTION("hole in the offsets") {
    const std::string path = write_raw(dir, "hole.safetensors",
                                       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                                       20);
    CHECK_THROWS_WITH(SafetensorsFile(path),
                      Catch::Contains(path) && Catch::Contains("\"b\"") && Catch::Contains("a hole"));
  }
  SECTION("first tensor not at offset 0") {
    const std::string path =
        write_raw(dir, "start.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("start at 0"));
  }
  SECTION("overlapping tensors") {
    const std::string path = write_raw(dir, "overlap.safetensors",
                                       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                       12);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("overlap"));
  }
  SECTION("byte range does not match shape and dtype") {
    const std::string path =
        write_raw(dir, "size.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", 12);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("\"a\"") &&
                                                 Catch::Contains("hold 12 bytes") && Catch::Contains("needs 8"));
  }
  SECTION("unknown dtype") {
    const std::string path =
        write_raw(dir, "dtype.safetensors", R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", 8);
    CHECK_THROWS_WITH(SafetensorsFile(path),
                      Catch::Contains(path) && Catch::Contains("\"a\"") && Catch::Contains("unknown dtype \"F31\""));
  }
  SECTION("negative dimension") {
    const std::string path =
        write_raw(dir, "neg.safetensors", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("shape"));
  }
  SECTION("non-string metadata") {
    const std::string path = write_raw(dir, "meta.safetensors", R"({"__metadata__":{"n":1}})", 0);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(path) && Catch::Contains("__metadata__[\"n\"]"));
  }
}

TEST_CASE("safetensors writer refuses bad names and duplicates", "[io][safetensors]") {
  SafetensorsWriter writer;
  const Tensor t = Tensor::zeros({1}, DType::F32);
  writer.add("a", t);
  CHECK_THROWS_WITH(writer.add("a", t), Catch::Contains("added twice"));
  CHECK_THROWS(writer.add("__metadata__", t));
  CHECK_THROWS(writer.add("b", Tensor()));
}

}  // namespace
}  // namespace tessel

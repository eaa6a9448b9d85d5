// Megatron .bin/.idx: the exact bytes the writer produces, reading every dtype code back, and
// the errors for damaged files.
#include "data/indexed_dataset.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "core/error.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

using testing::append_value;
using testing::read_bytes;
using testing::value_at;

// Writes PREFIX.idx/.bin by hand for one dtype code: one document per entry of `docs`, each
// given as raw element bytes.
void write_megatron_by_hand(const std::string& prefix, uint8_t code, size_t elem,
                            const std::vector<std::vector<uint8_t>>& docs) {
  std::vector<uint8_t> idx, bin;
  idx.insert(idx.end(), IndexedDataset::kMagic, IndexedDataset::kMagic + 9);
  append_value<uint64_t>(&idx, 1);
  idx.push_back(code);
  append_value<uint64_t>(&idx, docs.size());
  append_value<uint64_t>(&idx, docs.size() + 1);
  for (const auto& d : docs) append_value<int32_t>(&idx, static_cast<int32_t>(d.size() / elem));
  int64_t ptr = 0;
  for (const auto& d : docs) {
    append_value<int64_t>(&idx, ptr);
    ptr += static_cast<int64_t>(d.size());
    bin.insert(bin.end(), d.begin(), d.end());
  }
  for (size_t i = 0; i <= docs.size(); ++i) append_value<int64_t>(&idx, static_cast<int64_t>(i));
  testing::write_bytes(prefix + ".idx", idx.data(), idx.size());
  testing::write_bytes(prefix + ".bin", bin.data(), bin.size());
}

TEST_CASE("writer produces the 82-byte .idx of REFERENCE.md's worked example", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("two_docs");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({10, 11, 12});
  writer.add_document({13, 14});
  writer.finish();

  const std::vector<uint8_t> idx = read_bytes(prefix + ".idx");
  REQUIRE(idx.size() == 82);
  CHECK(std::memcmp(idx.data(), "MMIDIDX\0\0", 9) == 0);
  CHECK(value_at<uint64_t>(idx, 9) == 1);   // version
  CHECK(idx[17] == 8);                      // dtype code u16
  CHECK(value_at<uint64_t>(idx, 18) == 2);  // sequence_count
  CHECK(value_at<uint64_t>(idx, 26) == 3);  // document_count = documents + 1
  CHECK(value_at<int32_t>(idx, 34) == 3);   // lengths
  CHECK(value_at<int32_t>(idx, 38) == 2);
  CHECK(value_at<int64_t>(idx, 42) == 0);  // pointers (bytes)
  CHECK(value_at<int64_t>(idx, 50) == 6);
  CHECK(value_at<int64_t>(idx, 58) == 0);  // document_indices
  CHECK(value_at<int64_t>(idx, 66) == 1);
  CHECK(value_at<int64_t>(idx, 74) == 2);

  const std::vector<uint8_t> bin = read_bytes(prefix + ".bin");
  REQUIRE(bin.size() == 10);
  for (int i = 0; i < 5; ++i) CHECK(value_at<uint16_t>(bin, 2 * i) == 10 + i);
  // No temporaries are left behind.
  CHECK_FALSE(std::filesystem::exists(prefix + ".bin.tmp"));
  CHECK_FALSE(std::filesystem::exists(prefix + ".idx.tmp"));
}

TEST_CASE("writer and reader round-trip every dtype the writer supports", "[data]") {
  struct Case {
    DType dtype;
    DType stored;
    std::vector<int32_t> extremes;
  };
  const std::vector<Case> cases = {
      {DType::U8, DType::U8, {0, 255}},
      {DType::U16, DType::U16, {0, 65535}},
      {DType::I32, DType::I32, {-2147483647 - 1, 2147483647}},
      {DType::I64, DType::I64, {-2147483647 - 1, 2147483647}},
      {DType::F32, DType::F32, {-16777216, 16777216}},  // exact in f32
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION("dtype " << dtype_name(c.dtype)) {
      TempDir dir;
      const std::string prefix = dir.file("ds");
      const std::vector<std::vector<int32_t>> docs = {{1, 2, 3, 4}, {}, c.extremes, {7}};
      {
        IndexedDatasetWriter writer(prefix, c.dtype);
        for (const auto& d : docs) writer.add_document(d);
        CHECK(writer.num_documents() == 4);
        CHECK(writer.num_tokens() == 7);
        writer.finish();
      }
      IndexedDataset ds(prefix);
      CHECK(ds.dtype() == c.stored);
      CHECK(ds.num_documents() == 4);
      CHECK(ds.num_sequences() == 4);
      CHECK(ds.num_tokens() == 7);
      CHECK(ds.sequence_length(1) == 0);
      CHECK(ds.sequence_pointer(2) == 4 * static_cast<int64_t>(dtype_size(c.stored)));
      CHECK(ds.document_index(4) == 4);
      std::vector<int32_t> expected;
      for (const auto& d : docs) expected.insert(expected.end(), d.begin(), d.end());
      CHECK(testing::read_all(ds) == expected);
      int32_t middle[2];
      ds.read(3, 2, middle);
      CHECK(middle[0] == 4);
      CHECK(middle[1] == c.extremes[0]);
    }
  }
}

TEST_CASE("reader accepts the dtype codes the writer does not produce (i8, i16, f64)", "[data]") {
  TempDir dir;
  std::vector<uint8_t> i8 = {0x05, 0xff};  // 5, -1
  write_megatron_by_hand(dir.file("i8"), 2, 1, {i8});
  CHECK(testing::read_all(IndexedDataset(dir.file("i8"))) == std::vector<int32_t>{5, -1});

  std::vector<uint8_t> i16;
  append_value<int16_t>(&i16, -300);
  append_value<int16_t>(&i16, 30000);
  write_megatron_by_hand(dir.file("i16"), 3, 2, {i16});
  IndexedDataset ds16(dir.file("i16"));
  CHECK(ds16.dtype() == DType::I16);
  CHECK(testing::read_all(ds16) == std::vector<int32_t>{-300, 30000});

  std::vector<uint8_t> f64a, f64b;
  append_value<double>(&f64a, 42.0);
  append_value<double>(&f64b, 50256.0);
  append_value<double>(&f64b, 0.0);
  write_megatron_by_hand(dir.file("f64"), 6, 8, {f64a, f64b});
  IndexedDataset ds64(dir.file("f64"));
  CHECK(ds64.num_documents() == 2);
  CHECK(testing::read_all(ds64) == std::vector<int32_t>{42, 50256, 0});

  // A stored value that is not an integer token id is an error naming the file and position.
  std::vector<uint8_t> bad;
  append_value<double>(&bad, 1.0);
  append_value<double>(&bad, 2.5);
  write_megatron_by_hand(dir.file("bad"), 6, 8, {bad});
  IndexedDataset ds_bad(dir.file("bad"));
  int32_t out[2];
  const std::string msg = testing::error_message([&] { ds_bad.read(0, 2, out); });
  CHECK_THAT(msg, Catch::Contains("bad.bin") && Catch::Contains("token 1") && Catch::Contains("2.5"));
}

TEST_CASE("unknown dtype code and bad magic are errors naming the .idx", "[data]") {
  TempDir dir;
  write_megatron_by_hand(dir.file("code9"), 9, 1, {{1, 2}});
  CHECK_THAT(testing::error_message([&] { IndexedDataset ds(dir.file("code9")); }),
             Catch::Contains("code9.idx") && Catch::Contains("dtype code 9"));

  write_megatron_by_hand(dir.file("magic"), 1, 1, {{1}});
  auto idx = read_bytes(dir.file("magic.idx"));
  idx[0] = 'X';
  testing::write_bytes(dir.file("magic.idx"), idx.data(), idx.size());
  CHECK_THAT(testing::error_message([&] { IndexedDataset ds(dir.file("magic")); }),
             Catch::Contains("magic.idx") && Catch::Contains("not a Megatron index"));
}

TEST_CASE("a wrong version or document indices that do not end at the sequence count are errors", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("doc");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({1, 2, 3});
  writer.add_document({4, 5});
  writer.finish();
  const auto good = read_bytes(prefix + ".idx");

  auto idx = good;
  idx[9] = 2;  // version 2
  testing::write_bytes(prefix + ".idx", idx.data(), idx.size());
  CHECK_THAT(testing::error_message([&] { IndexedDataset ds(prefix); }),
             Catch::Contains("doc.idx") && Catch::Contains("version 2, expected 1"));

  // The worked example's document_indices are [0, 1, 2] at bytes 58, 66, 74: end at 1, not 2.
  idx = good;
  idx[74] = 1;
  testing::write_bytes(prefix + ".idx", idx.data(), idx.size());
  CHECK_THAT(testing::error_message([&] { IndexedDataset ds(prefix); }),
             Catch::Contains("doc.idx") && Catch::Contains("last document index is 1") &&
                 Catch::Contains("expected sequence_count 2"));
}

TEST_CASE("a truncated .idx is an error naming the file, expected and actual size", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("cut");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({1, 2, 3});
  writer.add_document({4, 5});
  writer.finish();

  std::filesystem::resize_file(prefix + ".idx", 60);
  const std::string msg = testing::error_message([&] { IndexedDataset ds(prefix); });
  CHECK_THAT(msg, Catch::Contains("cut.idx") && Catch::Contains("truncated") && Catch::Contains("60 bytes") &&
                      Catch::Contains("expected 82"));

  std::filesystem::resize_file(prefix + ".idx", 20);  // not even a header
  CHECK_THAT(testing::error_message([&] { IndexedDataset ds(prefix); }),
             Catch::Contains("cut.idx") && Catch::Contains("20 bytes") && Catch::Contains("at least 34"));
}

TEST_CASE("a truncated .bin is an error naming the file, expected and actual size", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("short");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({1, 2, 3});
  writer.add_document({4, 5});
  writer.finish();
  std::filesystem::resize_file(prefix + ".bin", 7);
  const std::string msg = testing::error_message([&] { IndexedDataset ds(prefix); });
  CHECK_THAT(msg, Catch::Contains("short.bin") && Catch::Contains("truncated") && Catch::Contains("7 bytes") &&
                      Catch::Contains("expected 10"));
}

TEST_CASE("inconsistent pointers in the .idx are an error", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("ptr");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({1, 2, 3});
  writer.add_document({4, 5});
  writer.finish();
  auto idx = read_bytes(prefix + ".idx");
  const int64_t wrong = 4;
  std::memcpy(idx.data() + 50, &wrong, 8);  // second pointer should be 6
  testing::write_bytes(prefix + ".idx", idx.data(), idx.size());
  CHECK_THAT(testing::error_message([&] { IndexedDataset ds(prefix); }),
             Catch::Contains("ptr.idx") && Catch::Contains("sequence 1") && Catch::Contains("expected 6"));
}

TEST_CASE("reads outside the dataset are errors", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("small");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({1, 2, 3});
  writer.finish();
  IndexedDataset ds(prefix);
  int32_t out[4];
  CHECK_THAT(testing::error_message([&] { ds.read(1, 3, out); }),
             Catch::Contains("out of range") && Catch::Contains("3 tokens"));
  CHECK_THROWS_AS(ds.read(-1, 1, out), Error);
}

TEST_CASE("writer rejects tokens that do not fit the dtype and cleans up when dropped", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("range");
  {
    IndexedDatasetWriter writer(prefix, DType::U16);
    writer.add_document({1, 2});
    CHECK_THAT(testing::error_message([&] {
                 writer.add_document({3, 70000});
               }),
               Catch::Contains("document 1") && Catch::Contains("token 1") && Catch::Contains("70000") &&
                   Catch::Contains("u16"));
    CHECK(std::filesystem::exists(prefix + ".bin.tmp"));
  }
  CHECK_FALSE(std::filesystem::exists(prefix + ".bin.tmp"));
  CHECK_FALSE(std::filesystem::exists(prefix + ".bin"));
  CHECK_FALSE(std::filesystem::exists(prefix + ".idx"));
  CHECK_THROWS_AS(IndexedDatasetWriter(prefix, DType::BF16), Error);
  CHECK_THAT(testing::error_message([&] { IndexedDatasetWriter w(dir.file("no/such/dir/x"), DType::U16); }),
             Catch::Contains("no/such/dir/x.bin.tmp"));
}

}  // namespace
}  // namespace tessel

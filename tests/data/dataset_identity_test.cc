// Dataset records and fingerprints (data/dataset_identity.h).
#include "data/dataset_identity.h"

#include <catch2/catch.hpp>

#include <string>

#include "core/io/temp_dir.h"
#include "data/indexed_dataset.h"
#include "data/prepare.h"
#include "data/token_source.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

TEST_CASE("a fingerprint changes with any rewrite of the data, not with a copy", "[data]") {
  TempDir dir;
  // Large enough that only the ends and sampled blocks are read: a change between them at a
  // sampled block's place must still show, and an unchanged file must hash the same.
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  testing::write_text(dir.file("a.txt"), text);
  PrepareOptions options;
  options.inputs = {dir.file("a.txt")};
  options.split_lines = true;
  options.out_prefix = dir.file("a");
  prepare_dataset(options);
  const auto first = fingerprint_dataset("train", *open_token_source(dir.file("a_train")));
  CHECK(first.role == "train");
  CHECK(first.path == dir.file("a_train"));
  CHECK(first.tokenizer == "bytes");
  CHECK(first.bytes > 200000);
  CHECK(first.hash.size() == 8);
  // The same data prepared again: the same fingerprint.
  prepare_dataset(options);
  CHECK(fingerprint_dataset("train", *open_token_source(dir.file("a_train"))).hash == first.hash);
  // Other text of the same length: another fingerprint, though the size is equal.
  std::string other = text;
  other[0] = 'L';
  testing::write_text(dir.file("a.txt"), other);
  prepare_dataset(options);
  const auto changed = fingerprint_dataset("train", *open_token_source(dir.file("a_train")));
  CHECK(changed.bytes == first.bytes);
  CHECK(changed.hash != first.hash);
}

TEST_CASE("a prepared dataset records its tokenizer, and a damaged record is named", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("a.txt"), "some text");
  PrepareOptions options;
  options.inputs = {dir.file("a.txt")};
  options.out_prefix = dir.file("a");
  prepare_dataset(options);
  const auto source = open_token_source(dir.file("a_train"));
  const std::optional<DatasetRecord> record = read_dataset_record(*source);
  REQUIRE(record.has_value());
  CHECK(record->tokenizer == "bytes");
  CHECK(record->vocab_size == 257);
  CHECK(record->written_by.rfind("tessel ", 0) == 0);
  CHECK(dataset_record_path("data/web_000003.bin") == "data/web.tessel.json");
  CHECK(dataset_record_path("data/x_train.idx") == "data/x_train.tessel.json");
  testing::write_text(dir.file("a_train.tessel.json"), "[1, 2]");
  CHECK_THAT(testing::error_message([&] { read_dataset_record(*source); }),
             Catch::Contains(dir.file("a_train.tessel.json")) && Catch::Contains("\"tokenizer\" string"));
}

}  // namespace
}  // namespace tessel

// open_token_source: which reader a path selects, and the error when nothing is there.
#include "data/token_source.h"

#include <catch2/catch.hpp>

#include "data/indexed_dataset.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

TEST_CASE("open_token_source accepts a Megatron prefix, PREFIX.idx and PREFIX.bin", "[data]") {
  TempDir dir;
  const std::string prefix = dir.file("corpus_train");
  IndexedDatasetWriter writer(prefix, DType::U16);
  writer.add_document({5, 6, 7});
  writer.finish();
  for (const std::string& path : {prefix, prefix + ".idx", prefix + ".bin"}) {
    auto source = open_token_source(path);
    CHECK(source->format() == "megatron");
    CHECK(source->path() == prefix);
    CHECK(source->num_documents() == 1);
    CHECK(testing::read_all(*source) == std::vector<int32_t>{5, 6, 7});
  }
}

TEST_CASE("open_token_source explains what it looked for when nothing is there", "[data]") {
  TempDir dir;
  const std::string missing = dir.file("nothing");
  const std::string msg = testing::error_message([&] { open_token_source(missing); });
  CHECK_THAT(msg, Catch::Contains("no dataset at '" + missing + "'") && Catch::Contains(missing + ".idx") &&
                      Catch::Contains(missing + ".bin") && Catch::Contains("llm.c shard") &&
                      Catch::Contains("tessel data prepare"));

  // Half a Megatron dataset names the missing half.
  testing::write_text(dir.file("half.idx"), "x");
  CHECK_THAT(testing::error_message([&] { open_token_source(dir.file("half")); }),
             Catch::Contains("found '" + dir.file("half.idx") + "' but not '" + dir.file("half.bin") + "'"));

  // A file that is neither format.
  testing::write_text(dir.file("notes.txt"), "hello world");
  CHECK_THAT(testing::error_message([&] { open_token_source(dir.file("notes.txt")); }),
             Catch::Contains("neither a Megatron dataset"));
}

}  // namespace
}  // namespace tessel

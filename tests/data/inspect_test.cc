// The `tessel data inspect` report: counts, first tokens, decoded byte text.
#include "data/inspect.h"

#include <catch2/catch.hpp>

#include "data/indexed_dataset.h"
#include "data/llmc_shard.h"
#include "data/prepare.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

TEST_CASE("inspect reports format, dtype, counts, first tokens and byte text", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("a.txt"), "hi\n\"you\"\nthere");
  PrepareOptions options;
  options.inputs = {dir.file("a.txt")};
  options.out_prefix = dir.file("c");
  options.split_lines = true;
  prepare_dataset(options);
  auto source = open_token_source(dir.file("c_train"));
  const std::string report = describe_token_source(*source, 9);
  CHECK_THAT(report, Catch::Contains("format:    megatron") && Catch::Contains("dtype:     u16") &&
                         Catch::Contains("documents: 3\n") && Catch::Contains("tokens:    15\n") &&
                         Catch::Contains("first 9 tokens: [104, 105, 256, 34, 121, 111, 117, 34, 256]") &&
                         Catch::Contains(R"(as bytes:  "hi<|endoftext|>\"you\"<|endoftext|>")"));
  // Asking for more tokens than exist shows them all.
  CHECK_THAT(describe_token_source(*source, 1000), Catch::Contains("first 15 tokens"));
}

TEST_CASE("inspect of an llm.c shard says documents are unknown and skips byte text", "[data]") {
  TempDir dir;
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520;
  header[1] = 1;
  header[2] = 3;
  std::vector<uint8_t> bytes(1024);
  std::memcpy(bytes.data(), header.data(), 1024);
  for (uint16_t t : {50256, 15496, 11}) testing::append_value<uint16_t>(&bytes, t);
  testing::write_bytes(dir.file("s.bin"), bytes.data(), bytes.size());
  const std::string report = describe_token_source(LlmcShard(dir.file("s.bin")), 32);
  CHECK_THAT(report, Catch::Contains("llm.c shard (GPT-2, magic 20240520, version 1)") &&
                         Catch::Contains("documents: unknown") && Catch::Contains("tokens:    3\n") &&
                         Catch::Contains("first 3 tokens: [50256, 15496, 11]"));
  CHECK_THAT(report, !Catch::Contains("as bytes"));
}

}  // namespace
}  // namespace tessel

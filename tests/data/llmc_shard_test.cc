// llm.c shards written by hand: GPT-2 (u16) and LLaMA-3 (u32) headers, and size errors.
#include "data/llmc_shard.h"

#include <catch2/catch.hpp>

#include "core/error.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

template <typename T>
std::vector<uint8_t> shard_bytes(int32_t magic, int32_t version, const std::vector<T>& tokens,
                                 int32_t count_in_header) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = count_in_header;
  std::vector<uint8_t> bytes(1024);
  std::memcpy(bytes.data(), header.data(), 1024);
  for (T t : tokens) testing::append_value<T>(&bytes, t);
  return bytes;
}

TEST_CASE("llm.c GPT-2 shard (magic 20240520, v1, u16) reads back its tokens", "[data]") {
  TempDir dir;
  const std::vector<uint16_t> tokens = {50256, 15496, 11, 995, 50256, 40};
  const auto bytes = shard_bytes<uint16_t>(20240520, 1, tokens, 6);
  REQUIRE(bytes.size() == 1024 + 12);
  testing::write_bytes(dir.file("shard_000.bin"), bytes.data(), bytes.size());

  auto source = open_token_source(dir.file("shard_000.bin"));
  CHECK(source->format() == "llm.c");
  CHECK(source->dtype() == DType::U16);
  CHECK(source->num_tokens() == 6);
  CHECK(source->num_documents() == -1);
  CHECK(testing::read_all(*source) == std::vector<int32_t>{50256, 15496, 11, 995, 50256, 40});
  int32_t two[2];
  source->read(4, 2, two);
  CHECK(two[0] == 50256);
  CHECK(two[1] == 40);
  // Named without its extension, as data.train paths usually are.
  CHECK(open_token_source(dir.file("shard_000"))->format() == "llm.c");
}

TEST_CASE("llm.c LLaMA-3 shard (magic 20240801, v7, u32) reads back its tokens", "[data]") {
  TempDir dir;
  const std::vector<uint32_t> tokens = {128000, 9906, 1917, 128001};
  const auto bytes = shard_bytes<uint32_t>(20240801, 7, tokens, 4);
  testing::write_bytes(dir.file("llama.bin"), bytes.data(), bytes.size());
  LlmcShard shard(dir.file("llama.bin"));
  CHECK(shard.dtype() == DType::U32);
  CHECK(shard.version() == 7);
  CHECK(testing::read_all(shard) == std::vector<int32_t>{128000, 9906, 1917, 128001});
}

TEST_CASE("an llm.c shard whose size disagrees with its header is an error", "[data]") {
  TempDir dir;
  const std::string path = dir.file("short.bin");
  auto bytes = shard_bytes<uint16_t>(20240520, 1, {1, 2, 3}, 5);  // header claims 5 tokens
  testing::write_bytes(path, bytes.data(), bytes.size());
  const std::string msg = testing::error_message([&] { LlmcShard s(path); });
  CHECK_THAT(msg, Catch::Contains("short.bin") && Catch::Contains("1030 bytes") &&
                      Catch::Contains("expected exactly 1034") && Catch::Contains("truncated"));

  bytes = shard_bytes<uint16_t>(20240520, 1, {1, 2, 3, 4}, 3);  // one token too many
  testing::write_bytes(path, bytes.data(), bytes.size());
  CHECK_THAT(testing::error_message([&] { LlmcShard s(path); }), Catch::Contains("expected exactly 1030"));

  bytes = shard_bytes<uint16_t>(20240520, 7, {1}, 1);  // GPT-2 magic wants version 1
  testing::write_bytes(path, bytes.data(), bytes.size());
  CHECK_THAT(testing::error_message([&] { LlmcShard s(path); }),
             Catch::Contains("version 7") && Catch::Contains("expected version 1"));

  testing::write_bytes(path, "tiny", 4);
  CHECK_THAT(testing::error_message([&] { LlmcShard s(path); }), Catch::Contains("shorter than its 1024-byte"));
}

TEST_CASE("u32 tokens beyond int32 are an error naming the shard and token", "[data]") {
  TempDir dir;
  const auto bytes = shard_bytes<uint32_t>(20240801, 7, {1, 3000000000u}, 2);
  testing::write_bytes(dir.file("big.bin"), bytes.data(), bytes.size());
  LlmcShard shard(dir.file("big.bin"));
  int32_t out[2];
  CHECK_THAT(testing::error_message([&] { shard.read(0, 2, out); }),
             Catch::Contains("big.bin") && Catch::Contains("token 1") && Catch::Contains("3000000000"));
}

}  // namespace
}  // namespace tessel

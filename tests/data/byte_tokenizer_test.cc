// Byte tokenizer: ids are byte values, 256 is end-of-text, everything round-trips.
#include "data/byte_tokenizer.h"

#include <catch2/catch.hpp>

#include "tests/data/test_files.h"

namespace tessel {
namespace {

TEST_CASE("byte tokenizer maps each byte to its value and round-trips all 256 bytes", "[data]") {
  CHECK(ByteTokenizer::encode("Hi\n") == std::vector<int32_t>{72, 105, 10});
  CHECK(ByteTokenizer::encode("\xc3\xa9") == std::vector<int32_t>{0xc3, 0xa9});  // é in UTF-8
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const auto ids = ByteTokenizer::encode(all);
  for (int b = 0; b < 256; ++b) CHECK(ids[b] == b);
  CHECK(ByteTokenizer::decode(ids) == all);
  CHECK(ByteTokenizer::kVocabSize == 257);
}

TEST_CASE("byte tokenizer decodes end-of-text and rejects or replaces ids above 256", "[data]") {
  CHECK(ByteTokenizer::decode({104, 105, ByteTokenizer::kEndOfText}) == "hi<|endoftext|>");
  const std::vector<int32_t> bad = {104, 300, -1};
  CHECK_THAT(testing::error_message([&] { ByteTokenizer::decode(bad); }),
             Catch::Contains("token 1") && Catch::Contains("300"));
  CHECK(ByteTokenizer::decode(bad, ByteTokenizer::InvalidIds::kReplace) == "h\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace tessel

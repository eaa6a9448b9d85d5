// The "text" field of JSONL records: escapes, surrogate pairs, skipped values, errors.
#include "data/json_text.h"

#include <catch2/catch.hpp>

#include "tests/data/test_files.h"

namespace tessel {
namespace {

std::string text_of(const std::string& line) {
  std::string value;
  REQUIRE(json_string_field(line, "text", "t.jsonl:1", &value));
  return value;
}

TEST_CASE("json text field decodes every escape and surrogate pairs to UTF-8", "[data]") {
  CHECK(text_of(R"({"text": "plain"})") == "plain");
  CHECK(text_of(R"({"text":"q\"b\\s\/n\nt\tr\rb\bf\f"})") == "q\"b\\s/n\nt\tr\rb\bf\f");
  CHECK(text_of(R"({"text": "\u0041\u00e9\u20AC"})") == "A\xc3\xa9\xe2\x82\xac");
  CHECK(text_of(R"({"text": "\ud83d\ude00!"})") == "\xf0\x9f\x98\x80!");  // U+1F600
  // Unpaired surrogates become U+FFFD; the escape after a lone high surrogate still decodes.
  CHECK(text_of(R"({"text": "\ud83dx\ude00\ud83d\u0041"})") ==
        "\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd"
        "A");
  // Raw UTF-8 passes through.
  CHECK(text_of("{\"text\": \"caf\xc3\xa9\"}") == "caf\xc3\xa9");
}

TEST_CASE("json text field skips other values of every type", "[data]") {
  CHECK(text_of(R"( {"id": [1, {"x": "}"}, []], "meta": {"a": {"b": null}}, "n": -1.5e+3,)"
                R"( "t": true, "f": false, "z": null, "text": "hello", "after": 0} )") == "hello");
  CHECK(text_of(R"({"text": "first", "text": "last"})") == "last");
  std::string value;
  CHECK_FALSE(json_string_field(R"({"body": "x"})", "text", "t.jsonl:1", &value));
  CHECK_FALSE(json_string_field("{}", "text", "t.jsonl:1", &value));
}

TEST_CASE("malformed json lines are errors naming file, line and byte", "[data]") {
  std::string value;
  auto error = [&](const std::string& line) {
    return testing::error_message([&] { json_string_field(line, "text", "c.jsonl:7", &value); });
  };
  CHECK_THAT(error(R"(["text"])"), Catch::Contains("c.jsonl:7: byte 0") && Catch::Contains("'{'"));
  CHECK_THAT(error(R"({"text": 5})"), Catch::Contains("byte 9") && Catch::Contains("string"));
  CHECK_THAT(error(R"({"text": "open)"), Catch::Contains("close the string"));
  CHECK_THAT(error(R"({"text": "x"} extra)"), Catch::Contains("end of the line"));
  CHECK_THAT(error(R"({"text": "\q"})"), Catch::Contains("byte 11") && Catch::Contains("'q'"));
  CHECK_THAT(error(R"({"text": "\u12G4"})"), Catch::Contains("hex digits"));
  CHECK_THAT(error(R"({"a": tru, "text": "x"})"), Catch::Contains("a JSON value"));
  CHECK_THAT(error("{\"text\": \"tab\there\"}"), Catch::Contains("control character"));
  CHECK_THAT(error(R"({"a": 01})"), Catch::Contains("','"));
}

}  // namespace
}  // namespace tessel

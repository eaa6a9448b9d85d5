#include "core/io/json.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace tessel {
namespace {

TEST_CASE("parse_json reads objects, arrays, strings, numbers and literals", "[io][json]") {
  const JsonValue v = parse_json(
      R"( {"a": [1, -2, 3.5, 1e3], "b": {"c": "x\"y\\z\n\u00e9\ud83d\ude00"}, "t": true,
          "f": false, "n": null, "big": 9007199254740993} )",
      "test");
  REQUIRE(v.is_object());
  REQUIRE(v.as_object().size() == 6);
  CHECK(v.as_object()[0].first == "a");  // document order kept
  const auto& a = v.find("a")->as_array();
  REQUIRE(a.size() == 4);
  CHECK(a[0].as_int() == 1);
  CHECK(a[1].as_int() == -2);
  CHECK_FALSE(a[2].is_integer());
  CHECK(a[2].as_double() == 3.5);
  CHECK(a[3].as_double() == 1000.0);
  CHECK_FALSE(a[3].is_integer());
  CHECK(v.find("b")->find("c")->as_string() == "x\"y\\z\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("t")->as_bool());
  CHECK_FALSE(v.find("f")->as_bool());
  CHECK(v.find("n")->is_null());
  // 2^53 + 1 is not a double; integers must stay exact for large byte offsets.
  CHECK(v.find("big")->as_int() == 9007199254740993LL);
  CHECK(v.find("missing") == nullptr);
}

TEST_CASE("parse_json errors name the source, the byte offset and what was expected", "[io][json]") {
  CHECK_THROWS_WITH(parse_json("{\"a\": }", "cfg.json"),
                    Catch::Contains("cfg.json") && Catch::Contains("byte 6") && Catch::Contains("found '}'"));
  CHECK_THROWS_WITH(parse_json("[1, 2", "x"), Catch::Contains("end of input"));
  CHECK_THROWS_WITH(parse_json("{\"a\":1,\"a\":2}", "x"), Catch::Contains("duplicate key \"a\""));
  CHECK_THROWS_WITH(parse_json("{} x", "x"), Catch::Contains("end of document"));
  CHECK_THROWS(parse_json("\"\x01\"", "x"));
  CHECK_THROWS(parse_json("01", "x"));
  CHECK_THROWS(parse_json("\"\\ud800\"", "x"));
  CHECK_THROWS_WITH(parse_json(std::string(1000, '['), "x"), Catch::Contains("nested"));
  CHECK_THROWS_WITH(parse_json("[1]", "x").as_object(), Catch::Contains("is an array, expected an object"));
}

TEST_CASE("json strings escape quotes, backslashes and control characters", "[io][json]") {
  CHECK(json_quote("a\"b\\c\n\t\x01") == "\"a\\\"b\\\\c\\n\\t\\u0001\"");
  CHECK(json_quote("\xc3\xa9") == "\"\xc3\xa9\"");  // UTF-8 passes through
  // Round trip through the parser.
  const std::string s = "q\"\\\b\f\n\r\t\x1f/";
  CHECK(parse_json(json_quote(s), "x").as_string() == s);
}

TEST_CASE("json numbers are shortest round-trip text, non-finite become null", "[io][json]") {
  auto num = [](double v) {
    std::string s;
    append_json_number(s, v);
    return s;
  };
  CHECK(num(0.1) == "0.1");
  CHECK(num(3.0) == "3");
  CHECK(num(-2.5e-7) == "-2.5e-07");
  CHECK(num(0.0006) == "0.0006");
  CHECK(num(1e-5) == "1e-05");
  CHECK(num(1234.5) == "1234.5");
  CHECK(num(1e16) == "1e+16");
  CHECK(num(123456789012345.0) == "123456789012345");
  CHECK(num(1.5e300) == "1.5e+300");
  CHECK(num(0.0) == "0");
  CHECK(num(-0.0) == "-0");
  CHECK(num(std::nan("")) == "null");
  CHECK(num(std::numeric_limits<double>::infinity()) == "null");
  CHECK(num(-std::numeric_limits<double>::infinity()) == "null");
  // Every value reads back exactly, across magnitudes.
  for (double x : {0.30000000000000004, 6e-4, 1.0 / 3.0, 2.0 / 3.0 * 1e-9, 1e15 + 0.5, 5e-324, 1.7976931348623157e308,
                   -123.456e-20}) {
    INFO(num(x));
    CHECK(parse_json(num(x), "x").as_double() == x);
  }
}

TEST_CASE("JsonValue::dump writes compact JSON in stored order", "[io][json]") {
  const std::string text = R"({"z":[1,2.5,"s",null,true],"a":{}})";
  CHECK(parse_json(text, "x").dump() == text);
}

}  // namespace
}  // namespace tessel

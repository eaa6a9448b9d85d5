// A minimal JSON value, parser and writer helpers: enough for safetensors headers,
// `model.safetensors.index.json`, Hugging Face `config.json` and the metrics log.
//
// JsonValue is a plain value type (copyable, no sharing). Objects keep their members in
// document order so that writers are deterministic and readers can report positions; duplicate
// keys are rejected by the parser. Numbers that are written without fraction or exponent and fit
// in int64 are kept exactly as integers (safetensors offsets exceed 2^53 in large files); all
// others are doubles. Parsing is recursive with a depth limit, so hostile input cannot overflow
// the stack. Everything here is thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tessel {

// How dump() separates items: compact (`{"a":1,"b":2}`, for files) or spaced as Python's
// json.dumps writes them (`{"a": 1, "b": 2}`, for reports people read).
enum class JsonStyle { kCompact, kSpaced };

class JsonValue {
 public:
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<JsonValue>;
  using Object = std::vector<std::pair<std::string, JsonValue>>;  // document order

  JsonValue() = default;  // null
  static JsonValue boolean(bool b);
  static JsonValue integer(int64_t i);
  static JsonValue number(double d);
  static JsonValue string(std::string s);
  static JsonValue array(Array items);
  static JsonValue object(Object members);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  // A number written as an integer literal that fits in int64.
  bool is_integer() const { return kind_ == Kind::Number && is_integer_; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  // Accessors throw tessel::Error naming the expected and the actual kind.
  bool as_bool() const;
  double as_double() const;
  int64_t as_int() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // The member named `key` of an object, or nullptr when absent (throws if not an object).
  const JsonValue* find(const std::string& key) const;

  // Serialization, members in stored order.
  std::string dump(JsonStyle style = JsonStyle::kCompact) const;

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  bool is_integer_ = false;
  int64_t int_ = 0;
  double double_ = 0.0;
  std::string string_;
  Array array_;
  Object object_;
};

// One line of a report (the CLI's JSON results, benchmarks): members in the order added,
// spaced as json.dumps writes them, and numbers rounded to the digits the reader needs.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, JsonValue value);
  JsonLine& add(const std::string& key, const std::string& value) { return add(key, JsonValue::string(value)); }
  JsonLine& add(const std::string& key, const char* value) { return add(key, JsonValue::string(value)); }
  JsonLine& add(const std::string& key, bool value) { return add(key, JsonValue::boolean(value)); }
  JsonLine& add(const std::string& key, int value) { return add(key, JsonValue::integer(value)); }
  JsonLine& add(const std::string& key, int64_t value) { return add(key, JsonValue::integer(value)); }
  JsonLine& add(const std::string& key, uint64_t value) {
    return add(key, JsonValue::integer(static_cast<int64_t>(value)));
  }
  // `value` rounded to `digits` after the point; NaN and infinities are written as null.
  JsonLine& add(const std::string& key, double value, int digits);
  std::string str() const;

 private:
  JsonValue::Object members_;
};

// "an object", "a string", "null", ...: ready to use in a sentence.
const char* json_kind_name(JsonValue::Kind kind);

// Parses a complete JSON document (surrounding whitespace allowed, nothing else after it).
// Errors name `source` (a file path or a description), the byte offset, what was found and
// what was expected.
JsonValue parse_json(const std::string& text, const std::string& source);

// Appends `s` as a quoted JSON string: escapes quotes, backslashes and control characters;
// other bytes (UTF-8) pass through unchanged.
void append_json_string(std::string& out, const std::string& s);
std::string json_quote(const std::string& s);

// Appends the shortest text that reads back as exactly `value`, formatted as Python's repr
// (0.0006, 1e-05, 3 for 3.0); NaN and infinities, which JSON cannot express, become `null`.
void append_json_number(std::string& out, double value);

}  // namespace tessel

#include "core/io/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include "core/error.h"

namespace tessel {

const char* json_kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::Null: return "null";
    case JsonValue::Kind::Bool: return "a boolean";
    case JsonValue::Kind::Number: return "a number";
    case JsonValue::Kind::String: return "a string";
    case JsonValue::Kind::Array: return "an array";
    case JsonValue::Kind::Object: return "an object";
  }
  return "?";
}

JsonValue JsonValue::boolean(bool b) {
  JsonValue v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}

JsonValue JsonValue::integer(int64_t i) {
  JsonValue v;
  v.kind_ = Kind::Number;
  v.is_integer_ = true;
  v.int_ = i;
  v.double_ = static_cast<double>(i);
  return v;
}

JsonValue JsonValue::number(double d) {
  JsonValue v;
  v.kind_ = Kind::Number;
  v.double_ = d;
  return v;
}

JsonValue JsonValue::string(std::string s) {
  JsonValue v;
  v.kind_ = Kind::String;
  v.string_ = std::move(s);
  return v;
}

JsonValue JsonValue::array(Array items) {
  JsonValue v;
  v.kind_ = Kind::Array;
  v.array_ = std::move(items);
  return v;
}

JsonValue JsonValue::object(Object members) {
  JsonValue v;
  v.kind_ = Kind::Object;
  v.object_ = std::move(members);
  return v;
}

#define TESSEL_JSON_EXPECT(k)                                                                  \
  TESSEL_CHECK(kind_ == Kind::k) << "JSON value is " << json_kind_name(kind_) << ", expected " \
                                 << json_kind_name(Kind::k)

bool JsonValue::as_bool() const {
  TESSEL_JSON_EXPECT(Bool);
  return bool_;
}
double JsonValue::as_double() const {
  TESSEL_JSON_EXPECT(Number);
  return double_;
}
int64_t JsonValue::as_int() const {
  TESSEL_JSON_EXPECT(Number);
  TESSEL_CHECK(is_integer_) << "JSON number " << double_ << " is not an integer literal";
  return int_;
}
const std::string& JsonValue::as_string() const {
  TESSEL_JSON_EXPECT(String);
  return string_;
}
const JsonValue::Array& JsonValue::as_array() const {
  TESSEL_JSON_EXPECT(Array);
  return array_;
}
const JsonValue::Object& JsonValue::as_object() const {
  TESSEL_JSON_EXPECT(Object);
  return object_;
}

#undef TESSEL_JSON_EXPECT

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& member : as_object())
    if (member.first == key) return &member.second;
  return nullptr;
}

std::string JsonValue::dump(JsonStyle style) const {
  const char* item_sep = style == JsonStyle::kSpaced ? ", " : ",";
  const char* key_sep = style == JsonStyle::kSpaced ? ": " : ":";
  std::string out;
  switch (kind_) {
    case Kind::Null: out = "null"; break;
    case Kind::Bool: out = bool_ ? "true" : "false"; break;
    case Kind::Number:
      if (is_integer_)
        out = std::to_string(int_);
      else
        append_json_number(out, double_);
      break;
    case Kind::String: append_json_string(out, string_); break;
    case Kind::Array:
      out += '[';
      for (size_t i = 0; i < array_.size(); ++i) {
        if (i) out += item_sep;
        out += array_[i].dump(style);
      }
      out += ']';
      break;
    case Kind::Object:
      out += '{';
      for (size_t i = 0; i < object_.size(); ++i) {
        if (i) out += item_sep;
        append_json_string(out, object_[i].first);
        out += key_sep;
        out += object_[i].second.dump(style);
      }
      out += '}';
      break;
  }
  return out;
}

JsonLine& JsonLine::add(const std::string& key, JsonValue value) {
  members_.emplace_back(key, std::move(value));
  return *this;
}

JsonLine& JsonLine::add(const std::string& key, double value, int digits) {
  const double unit = std::pow(10.0, digits);
  const double rounded = std::isfinite(value) ? std::round(value * unit) / unit : value;
  return add(key, JsonValue::number(rounded));
}

std::string JsonLine::str() const { return JsonValue::object(members_).dump(JsonStyle::kSpaced); }

namespace {

// Nesting deeper than this is certainly not a header or a config; refusing it bounds recursion.
constexpr int kMaxDepth = 128;

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  JsonValue parse_document() {
    skip_space();
    JsonValue v = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("end of document");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* expected) {
    std::string found;
    if (pos_ >= text_.size()) {
      found = "end of input";
    } else {
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      char buf[16];
      if (c >= 0x20 && c < 0x7f)
        std::snprintf(buf, sizeof(buf), "'%c'", c);
      else
        std::snprintf(buf, sizeof(buf), "byte 0x%02x", c);
      found = buf;
    }
    TESSEL_FAIL() << source_ << ": invalid JSON at byte " << pos_ << ": found " << found << ", expected " << expected;
  }

  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect_literal(const char* word) {
    const size_t n = std::strlen(word);
    if (text_.compare(pos_, n, word) != 0) fail("a JSON value");
    pos_ += n;
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("less deeply nested data");
    if (pos_ >= text_.size()) fail("a JSON value");
    switch (text_[pos_]) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return JsonValue::string(parse_string());
      case 't': expect_literal("true"); return JsonValue::boolean(true);
      case 'f': expect_literal("false"); return JsonValue::boolean(false);
      case 'n': expect_literal("null"); return JsonValue();
      default: return parse_number();
    }
  }

  JsonValue parse_object(int depth) {
    ++pos_;  // '{'
    JsonValue::Object members;
    std::unordered_set<std::string> seen;
    skip_space();
    if (consume('}')) return JsonValue::object(std::move(members));
    for (;;) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("a string key");
      const size_t key_pos = pos_;
      std::string key = parse_string();
      // A set of the keys seen: a linear scan per key is quadratic, and GPT-2's encoder.json
      // has 50257 keys.
      if (!seen.insert(key).second) {
        pos_ = key_pos;
        TESSEL_FAIL() << source_ << ": invalid JSON at byte " << key_pos << ": duplicate key \"" << key << "\"";
      }
      skip_space();
      if (!consume(':')) fail("':'");
      skip_space();
      JsonValue value = parse_value(depth + 1);
      members.emplace_back(std::move(key), std::move(value));
      skip_space();
      if (consume('}')) return JsonValue::object(std::move(members));
      if (!consume(',')) fail("',' or '}'");
    }
  }

  JsonValue parse_array(int depth) {
    ++pos_;  // '['
    JsonValue::Array items;
    skip_space();
    if (consume(']')) return JsonValue::array(std::move(items));
    for (;;) {
      skip_space();
      items.push_back(parse_value(depth + 1));
      skip_space();
      if (consume(']')) return JsonValue::array(std::move(items));
      if (!consume(',')) fail("',' or ']'");
    }
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > text_.size()) fail("four hex digits after \\u");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= unsigned(c - 'A' + 10);
      else
        fail("a hex digit");
      ++pos_;
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= text_.size()) fail("closing '\"'");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("an escaped control character");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) fail("an escape character");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // high surrogate: a low one must follow
            if (!(consume('\\') && consume('u'))) fail("a low surrogate \\uDC00-\\uDFFF");
            const unsigned lo = parse_hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("a low surrogate \\uDC00-\\uDFFF");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("a high surrogate before a low one");
          }
          append_utf8(out, cp);
          break;
        }
        default: --pos_; fail("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
      }
    }
  }

  JsonValue parse_number() {
    const size_t start = pos_;
    consume('-');
    if (pos_ >= text_.size() || !(text_[pos_] >= '0' && text_[pos_] <= '9')) fail("a JSON value");
    if (!consume('0'))
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    bool integral = true;
    if (consume('.')) {
      integral = false;
      if (pos_ >= text_.size() || !(text_[pos_] >= '0' && text_[pos_] <= '9')) fail("a digit");
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (!consume('+')) consume('-');
      if (pos_ >= text_.size() || !(text_[pos_] >= '0' && text_[pos_] <= '9')) fail("a digit");
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t i = 0;
      const auto r = std::from_chars(first, last, i);
      // "-0" stays a double (-0.0), which is what append_json_number writes for one.
      if (r.ec == std::errc() && r.ptr == last && !(i == 0 && *first == '-')) return JsonValue::integer(i);
      // Out of int64 range: keep it as a double, as other JSON readers do.
    }
    // strtod stops at the first byte that is not part of the number; the literal is already
    // validated, so copying it bounds the read.
    const std::string literal(first, last);
    return JsonValue::number(std::strtod(literal.c_str(), nullptr));
  }

  const std::string& text_;
  const std::string& source_;
  size_t pos_ = 0;
};

}  // namespace

JsonValue parse_json(const std::string& text, const std::string& source) {
  return Parser(text, source).parse_document();
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string json_quote(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  // The shortest digits that read back as exactly `value`, laid out as Python's repr does:
  // positional for exponents -4..15 (0.0006, 1234.5), scientific otherwise (1e-05, 1e+16), so
  // logs read naturally. Integral values print without ".0".
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);  // "-d.ddde-XX"
  const size_t e = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  const int exponent = std::atoi(sci.c_str() + e + 1);
  if (negative) out += '-';
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else {
      const size_t int_digits = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_digits) {
        out += digits;
        out.append(int_digits - digits.size(), '0');
      } else {
        out.append(digits, 0, int_digits);
        out += '.';
        out.append(digits, int_digits, std::string::npos);
      }
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  }
}

}  // namespace tessel

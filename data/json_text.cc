// A strict single-object JSON scanner; see json_text.h.
#include "data/json_text.h"

#include <cstdint>

#include "core/error.h"

namespace tessel {
namespace {

constexpr int kMaxDepth = 512;

class Scanner {
 public:
  Scanner(std::string_view text, const std::string& where) : s_(text), where_(where) {}

  bool field(std::string_view key, std::string* value) {
    bool found = false;
    skip_ws();
    expect('{', "'{' (each JSONL line must be one JSON object)");
    skip_ws();
    if (peek() == '}') {
      ++pos_;
    } else {
      std::string name;
      while (true) {
        skip_ws();
        if (peek() != '"') fail("a string key");
        name.clear();
        parse_string(&name);
        skip_ws();
        expect(':', "':' after a key");
        skip_ws();
        if (name == key) {
          if (peek() != '"') fail(std::string("a string for field \"") + std::string(key) + "\"");
          value->clear();
          parse_string(value);
          found = true;
        } else {
          skip_value(1);
        }
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect('}', "',' or '}'");
        break;
      }
    }
    skip_ws();
    if (pos_ != s_.size()) fail("the end of the line after the object");
    return found;
  }

 private:
  int peek() const { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : -1; }

  [[noreturn]] void fail(const std::string& expected) const {
    std::string found;
    if (pos_ >= s_.size()) {
      found = "the end of the line";
    } else {
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c >= 32 && c < 127) {
        found = std::string("'") + static_cast<char>(c) + "'";
      } else {
        found = "byte " + std::to_string(c);
      }
    }
    TESSEL_FAIL() << where_ << ": byte " << pos_ << ": expected " << expected << ", found " << found
                  << "; hint: each line of a .jsonl input must be one JSON object with "
                  << "a \"text\" string";
  }

  void expect(char c, const char* what) {
    if (peek() != static_cast<unsigned char>(c)) fail(what);
    ++pos_;
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }

  void skip_value(int depth) {
    if (depth > kMaxDepth) fail("at most 512 levels of nesting");
    const int c = peek();
    if (c == '"') {
      std::string ignored;
      parse_string(&ignored);
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      skip_ws();
      if (peek() == close) {
        ++pos_;
        return;
      }
      while (true) {
        skip_ws();
        if (c == '{') {
          if (peek() != '"') fail("a string key");
          std::string ignored;
          parse_string(&ignored);
          skip_ws();
          expect(':', "':' after a key");
          skip_ws();
        }
        skip_value(depth + 1);
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        if (peek() != close) fail(c == '{' ? "',' or '}'" : "',' or ']'");
        ++pos_;
        return;
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      skip_number();
    } else if (s_.compare(pos_, 4, "true") == 0 || s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
    } else if (s_.compare(pos_, 5, "false") == 0) {
      pos_ += 5;
    } else {
      fail("a JSON value");
    }
  }

  void skip_digits() {
    if (!(peek() >= '0' && peek() <= '9')) fail("a digit");
    while (peek() >= '0' && peek() <= '9') ++pos_;
  }

  void skip_number() {
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else {
      skip_digits();
    }
    if (peek() == '.') {
      ++pos_;
      skip_digits();
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      skip_digits();
    }
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int c = peek();
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("4 hex digits after \\u");
      }
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  static void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // At the opening quote; leaves pos_ after the closing quote.
  void parse_string(std::string* out) {
    ++pos_;
    while (true) {
      if (pos_ >= s_.size()) fail("'\"' to close the string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return;
      }
      if (c < 0x20) fail("an escaped control character (raw bytes < 0x20 are invalid in strings)");
      if (c != '\\') {
        // Copy the run of plain bytes at once.
        size_t end = pos_ + 1;
        while (end < s_.size() && s_[end] != '"' && s_[end] != '\\' && static_cast<unsigned char>(s_[end]) >= 0x20) {
          ++end;
        }
        out->append(s_.data() + pos_, end - pos_);
        pos_ = end;
        continue;
      }
      ++pos_;
      const int e = peek();
      ++pos_;
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate pairs with an immediately following \uDC00-\uDFFF.
            if (s_.compare(pos_, 2, "\\u") == 0) {
              const size_t save = pos_;
              pos_ += 2;
              const uint32_t low = parse_hex4();
              if (low >= 0xDC00 && low <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              } else {
                pos_ = save;  // not a pair: the next escape is decoded on its own
                cp = 0xFFFD;
              }
            } else {
              cp = 0xFFFD;
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD;
          }
          append_utf8(cp, out);
          break;
        }
        default: --pos_; fail("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
      }
    }
  }

  std::string_view s_;
  const std::string& where_;
  size_t pos_ = 0;
};

}  // namespace

bool json_string_field(std::string_view line, std::string_view key, const std::string& where, std::string* value) {
  return Scanner(line, where).field(key, value);
}

}  // namespace tessel

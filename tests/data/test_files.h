// Helpers for the data tests: raw file reading/writing, so tests can build files byte by byte and
// inspect what writers produced, an in-memory TokenSource, and error-message capture.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/io/temp_dir.h"
#include "data/token_source.h"

namespace tessel::testing {

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, text.data(), text.size());
}

template <typename T>
void append_value(std::vector<uint8_t>* out, T v) {
  const size_t at = out->size();
  out->resize(at + sizeof(T));
  std::memcpy(out->data() + at, &v, sizeof(T));
}

template <typename T>
T value_at(const std::vector<uint8_t>& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

inline std::vector<int32_t> read_all(const TokenSource& source) {
  std::vector<int32_t> tokens(static_cast<size_t>(source.num_tokens()));
  source.read(0, source.num_tokens(), tokens.data());
  return tokens;
}

// An in-memory TokenSource for sampler tests.
class VectorSource : public TokenSource {
 public:
  VectorSource(std::vector<int32_t> tokens, std::string path) : tokens_(std::move(tokens)), path_(std::move(path)) {}
  int64_t num_tokens() const override { return static_cast<int64_t>(tokens_.size()); }
  void read(int64_t begin, int64_t count, int32_t* out) const override {
    read_stored_tokens(path_, reinterpret_cast<const uint8_t*>(tokens_.data()), DType::I32, num_tokens(), begin, count,
                       out);
  }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  DType dtype() const override { return DType::I32; }

 private:
  std::vector<int32_t> tokens_;
  std::string path_;
};

}  // namespace tessel::testing

namespace tessel::testing {

// The message of the tessel::Error that fn throws, or "<no error>".
template <typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.message();
  }
  return "<no error>";
}

}  // namespace tessel::testing

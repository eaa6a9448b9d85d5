#include "core/io/crc32c.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace tessel {
namespace {

std::vector<unsigned char> pattern_bytes(size_t n) {
  std::vector<unsigned char> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<unsigned char>((i * 7) % 251);
  return d;
}

TEST_CASE("crc32c matches the Castagnoli check value", "[io][crc32c]") {
  const std::string s = "123456789";
  CHECK(crc32c(s.data(), s.size()) == 0xE3069283u);
  CHECK(crc32c_extend_portable(0, s.data(), s.size()) == 0xE3069283u);
  CHECK(crc32c(nullptr, 0) == 0u);
}

TEST_CASE("crc32c masking matches TensorBoard and inverts", "[io][crc32c]") {
  CHECK(crc32c_mask(0xE3069283u) == 0xC78AB0E5u);
  CHECK(crc32c_unmask(0xC78AB0E5u) == 0xE3069283u);
  for (uint32_t v : {0u, 1u, 0xFFFFFFFFu, 0x12345678u}) CHECK(crc32c_unmask(crc32c_mask(v)) == v);
}

TEST_CASE("crc32c of a long buffer matches a bitwise reference", "[io][crc32c]") {
  // Reference value from a bit-at-a-time Python implementation:
  //   c = 0xFFFFFFFF; for x in data: c ^= x; 8x: c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
  //   crc = c ^ 0xFFFFFFFF, data = bytes((i * 7) % 251 for i in range(1000)).
  const auto d = pattern_bytes(1000);
  CHECK(crc32c(d.data(), d.size()) == 0xA345377Au);
  CHECK(crc32c_extend_portable(0, d.data(), d.size()) == 0xA345377Au);
}

TEST_CASE("crc32c_extend over pieces equals crc32c of the whole, on both paths", "[io][crc32c]") {
  const auto d = pattern_bytes(257);
  const uint32_t whole = crc32c(d.data(), d.size());
  // Every split point and odd lengths exercise the 8-byte loop and the byte tail.
  for (size_t split = 0; split <= d.size(); split += 13) {
    const uint32_t a = crc32c(d.data(), split);
    CHECK(crc32c_extend(a, d.data() + split, d.size() - split) == whole);
    const uint32_t pa = crc32c_extend_portable(0, d.data(), split);
    CHECK(crc32c_extend_portable(pa, d.data() + split, d.size() - split) == whole);
  }
  // Unaligned starts.
  for (size_t off = 1; off < 8; ++off)
    CHECK(crc32c(d.data() + off, 100) == crc32c_extend_portable(0, d.data() + off, 100));
}

}  // namespace
}  // namespace tessel

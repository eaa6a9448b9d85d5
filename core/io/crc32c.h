// CRC-32C (Castagnoli), the checksum of TensorBoard's record framing and of Tessel's checkpoints.
//
// Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, so that
// crc32c("123456789") == 0xE3069283. `crc32c_extend` continues a checksum over more bytes:
// crc32c(a + b) == crc32c_extend(crc32c(a), b). Uses the SSE4.2 crc32 instruction when the
// build targets it, slice-by-8 tables otherwise. Pure functions; thread-safe (the tables are
// built once, on first use, by a thread-safe function-local static).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessel {

// Continues `crc` (a finished checksum of earlier bytes, or 0 for none) over `size` more bytes.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

// The table-driven path, always built; crc32c_extend uses it when SSE4.2 is not targeted.
// Exposed so that tests can check the two paths against each other.
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

// "e3069283": eight lower-case hex digits, as checkpoints store and report checksums.
std::string crc32c_hex(uint32_t crc);

// TensorBoard/TFRecord store masked checksums, because a CRC over data that itself embeds
// CRCs is weak: mask = rotate right by 15, plus a constant.
constexpr uint32_t kCrc32cMaskDelta = 0xA282EAD8u;
inline uint32_t crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kCrc32cMaskDelta; }
inline uint32_t crc32c_unmask(uint32_t masked) {
  const uint32_t rot = masked - kCrc32cMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace tessel

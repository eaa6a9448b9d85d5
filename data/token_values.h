// Token values as token files store them (core/dtype.h: Megatron's .bin may hold any of its eight
// dtype codes, u8, i8, i16, i32, i64, f64, f32, u16, and llm.c's LLaMA-3 shards hold u32) and
// their conversion to int32 token ids. Readers hand tokens to the rest of Tessel as int32 only,
// so each value must be an integer that fits in int32; conversion reports the first one that
// does not. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/dtype.h"

namespace tessel {

// Converts `count` little-endian values of `dtype` at `src` (no alignment needed) into `out`.
// Returns -1 when all converted, else the index of the first value that is not an integer in
// int32 range (out[0..index) are then filled, the rest unspecified).
int64_t convert_tokens_to_int32(const uint8_t* src, DType dtype, int64_t count, int32_t* out);

// The stored value at index `i`, printed exactly (for error messages).
std::string token_value_string(const uint8_t* src, DType dtype, int64_t i);

// Element i of an array of T at `src`, which need not be aligned (mmap'd files put arrays at
// any byte offset, e.g. the .idx lengths at byte 34).
template <typename T>
inline T load_unaligned(const uint8_t* src, int64_t i) {
  T v;
  std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

}  // namespace tessel

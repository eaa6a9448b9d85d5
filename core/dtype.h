// Element types of tensors and of token files, their sizes and names, and bf16/f16 conversions
// on the host. Tensors use F32, BF16, F16, I32, I64, U16 and U8; token files (data/) may also
// hold I8, I16, U32 and F64 (Megatron's eight dtype codes, llm.c's u32 shards). One table in
// dtype.cc gives each its size and both spellings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace tessel {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, U16, U8, I8, I16, U32, F64 };

size_t dtype_size(DType dtype);
// Names as safetensors spells them: "F32", "BF16", "F16", "I32", "I64", "U16", "U8", ...
const char* dtype_name(DType dtype);
// Lower-case short names, as token files are described: "u16", "i32", "f64", ...
const char* dtype_short_name(DType dtype);
// Inverse of dtype_name; throws tessel::Error naming the valid spellings.
DType dtype_from_name(const std::string& name);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::U16;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::U8;
}

// Round-to-nearest-even fp32 -> bf16, as the hardware does; NaN stays NaN.
inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
inline float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t float_to_f16(float f);
float f16_to_float(uint16_t h);

}  // namespace tessel

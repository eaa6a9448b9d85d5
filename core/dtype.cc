#include "core/dtype.h"

#include "core/error.h"

namespace tessel {

namespace {

struct DTypeInfo {
  DType dtype;
  size_t size;
  const char* name;        // safetensors'
  const char* short_name;  // token files'
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, 4, "F32", "f32"}, {DType::BF16, 2, "BF16", "bf16"}, {DType::F16, 2, "F16", "f16"},
    {DType::I32, 4, "I32", "i32"}, {DType::I64, 8, "I64", "i64"},    {DType::U16, 2, "U16", "u16"},
    {DType::U8, 1, "U8", "u8"},    {DType::I8, 1, "I8", "i8"},       {DType::I16, 2, "I16", "i16"},
    {DType::U32, 4, "U32", "u32"}, {DType::F64, 8, "F64", "f64"},
};

const DTypeInfo& info(DType dtype) {
  for (const DTypeInfo& i : kDTypes) {
    if (i.dtype == dtype) return i;
  }
  TESSEL_FAIL() << "invalid dtype code " << static_cast<int>(dtype);
}

}  // namespace

size_t dtype_size(DType dtype) { return info(dtype).size; }
const char* dtype_name(DType dtype) { return info(dtype).name; }
const char* dtype_short_name(DType dtype) { return info(dtype).short_name; }

DType dtype_from_name(const std::string& name) {
  std::string valid;
  for (const DTypeInfo& i : kDTypes) {
    if (name == i.name) return i.dtype;
    valid += (valid.empty() ? "" : ", ") + std::string(i.name);
  }
  TESSEL_FAIL() << "unknown dtype '" << name << "': expected one of " << valid;
}

uint16_t float_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {                                               // subnormal or zero in f16
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 113;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace tessel

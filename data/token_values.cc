// Token values; see token_values.h.
#include "data/token_values.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace tessel {
namespace {

// Integer types: range check against int32 limits.
template <typename T>
int64_t convert_int(const uint8_t* src, int64_t count, int32_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    T v = load_unaligned<T>(src, i);
    if constexpr (sizeof(T) < 4 || (std::numeric_limits<T>::is_signed && sizeof(T) == 4)) {
      // Every value fits; int8 (signed char) values sign-extend, as tokens stored as i8 are numbers.
      out[i] = static_cast<int32_t>(v);  // NOLINT(bugprone-signed-char-misuse)
    } else if constexpr (std::numeric_limits<T>::is_signed) {
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        return i;
      }
      out[i] = static_cast<int32_t>(v);
    } else {
      if (v > static_cast<T>(std::numeric_limits<int32_t>::max())) return i;
      out[i] = static_cast<int32_t>(v);
    }
  }
  return -1;
}

// Float types: Megatron allows f32/f64 token files; a value must be an exact integer.
template <typename T>
int64_t convert_float(const uint8_t* src, int64_t count, int32_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    T v = load_unaligned<T>(src, i);
    if (!(v >= -2147483648.0 && v <= 2147483647.0) || std::trunc(v) != v) return i;
    out[i] = static_cast<int32_t>(v);
  }
  return -1;
}

}  // namespace

int64_t convert_tokens_to_int32(const uint8_t* src, DType dtype, int64_t count, int32_t* out) {
  switch (dtype) {
    case DType::U8: return convert_int<uint8_t>(src, count, out);
    case DType::I8: return convert_int<int8_t>(src, count, out);
    case DType::I16: return convert_int<int16_t>(src, count, out);
    case DType::U16: return convert_int<uint16_t>(src, count, out);
    case DType::I32: std::memcpy(out, src, static_cast<size_t>(count) * 4); return -1;
    case DType::U32: return convert_int<uint32_t>(src, count, out);
    case DType::I64: return convert_int<int64_t>(src, count, out);
    case DType::F32: return convert_float<float>(src, count, out);
    case DType::F64: return convert_float<double>(src, count, out);
    case DType::BF16:
    case DType::F16: break;
  }
  TESSEL_FAIL() << "token files do not store " << dtype_name(dtype) << " values";
}

std::string token_value_string(const uint8_t* src, DType dtype, int64_t i) {
  std::ostringstream s;
  s.precision(17);
  switch (dtype) {
    case DType::U8: s << static_cast<int>(load_unaligned<uint8_t>(src, i)); break;
    case DType::I8: s << static_cast<int>(load_unaligned<int8_t>(src, i)); break;
    case DType::I16: s << load_unaligned<int16_t>(src, i); break;
    case DType::U16: s << load_unaligned<uint16_t>(src, i); break;
    case DType::I32: s << load_unaligned<int32_t>(src, i); break;
    case DType::U32: s << load_unaligned<uint32_t>(src, i); break;
    case DType::I64: s << load_unaligned<int64_t>(src, i); break;
    case DType::F32: s << load_unaligned<float>(src, i); break;
    case DType::F64: s << load_unaligned<double>(src, i); break;
    case DType::BF16: s << bf16_to_float(load_unaligned<uint16_t>(src, i)); break;
    case DType::F16: s << f16_to_float(load_unaligned<uint16_t>(src, i)); break;
  }
  return s.str();
}

}  // namespace tessel

// Shared pieces of the CUDA-vs-CPU parity tests ([gpu]): moving fp32 host values to a device
// buffer of the storage type under test and back, rounding host inputs the way the device
// stores them (so both backends start from identical values), and the comparison.
//
// Tolerance: the largest |gpu − cpu| over an output, divided by the output's largest |cpu|
// value (a normalized max error, which small entries near zero cannot blow up). fp32 runs do
// the same arithmetic in another order: kFp32Tolerance. bf16 runs round inputs, outputs and
// some intermediates to 8 bits of mantissa (ε = 2^-8 ≈ 3.9e-3 per rounding):
// kBf16Tolerance allows a few roundings to line up.
#pragma once

#ifdef TESSEL_HAVE_CUDA

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "core/dtype.h"
#include "core/kernels/cuda/device_context.h"
#include "core/kernels/cuda/device_query.h"
#include "core/tensor.h"

namespace tessel {
namespace testing {

constexpr double kFp32Tolerance = 2e-5;
constexpr double kBf16Tolerance = 2e-2;

// A [gpu] case returns early, with a message, where there is no CUDA device.
#define TESSEL_REQUIRE_GPU()                                                    \
  if (::tessel::cuda::device_count() == 0) {                                    \
    WARN("skipped: no CUDA device on this machine (the [gpu] cases need one)"); \
    return;                                                                     \
  }

template <typename T>
DType storage_dtype() {
  return std::is_same<T, float>::value ? DType::F32 : std::is_same<T, __half>::value ? DType::F16 : DType::BF16;
}

template <typename T>
double tolerance() {
  return std::is_same<T, float>::value ? kFp32Tolerance : kBf16Tolerance;
}

// x as the storage type T holds it, back in fp32.
template <typename T>
std::vector<float> rounded(std::vector<float> x) {
  if (std::is_same<T, __nv_bfloat16>::value)
    for (float& v : x) v = bf16_to_float(float_to_bf16(v));
  if (std::is_same<T, __half>::value)
    for (float& v : x) v = f16_to_float(float_to_f16(v));
  return x;
}

// A device tensor of T (or of fp32 when `as_float`) holding x.
template <typename T>
Tensor upload(cuda::DeviceContext& ctx, const std::vector<float>& x, bool as_float = false) {
  const DType dtype = as_float ? DType::F32 : storage_dtype<T>();
  Tensor host = Tensor::empty({static_cast<int64_t>(x.size())}, dtype);
  for (size_t i = 0; i < x.size(); ++i) {
    if (dtype == DType::F32)
      host.data<float>()[i] = x[i];
    else if (dtype == DType::BF16)
      host.data<uint16_t>()[i] = float_to_bf16(x[i]);
    else
      host.data<uint16_t>()[i] = float_to_f16(x[i]);
  }
  return ctx.to_device(host);
}

inline Tensor upload_tokens(cuda::DeviceContext& ctx, const std::vector<int32_t>& tokens) {
  return ctx.to_device(Tensor::from_vector<int32_t>(tokens, {static_cast<int64_t>(tokens.size())}));
}

inline std::vector<float> download(cuda::DeviceContext& ctx, const Tensor& t) {
  Tensor host = ctx.to_host(t);
  std::vector<float> out(static_cast<size_t>(host.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (host.dtype() == DType::F32)
      out[i] = host.data<float>()[i];
    else if (host.dtype() == DType::BF16)
      out[i] = bf16_to_float(host.data<uint16_t>()[i]);
    else
      out[i] = f16_to_float(host.data<uint16_t>()[i]);
  }
  return out;
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw());
}

inline void check_close(const std::string& what, const std::vector<float>& gpu, const std::vector<float>& cpu,
                        double tolerance) {
  REQUIRE(gpu.size() == cpu.size());
  double scale = 1e-6, worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    scale = std::max(scale, std::fabs(double(cpu[i])));
    REQUIRE(std::isfinite(gpu[i]));
    const double e = std::fabs(double(gpu[i]) - double(cpu[i]));
    if (e > worst) worst = e, at = i;
  }
  INFO(what << ": max |gpu - cpu| " << worst << " at [" << at << "] (gpu " << gpu[at] << ", cpu " << cpu[at]
            << "), largest |cpu| " << scale << ", normalized " << worst / scale << ", tolerance " << tolerance);
  CHECK(worst / scale <= tolerance);
}

}  // namespace testing
}  // namespace tessel

#endif  // TESSEL_HAVE_CUDA

// Gradient clipping pieces; see grad_clip.h.
#include "optim/grad_clip.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/device_backend.h"
#include "core/error.h"
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {

namespace {
constexpr double kClipEpsilon = 1e-6;  // torch's clip_grad_norm_ guard against norm 0
}  // namespace

double sum_of_squares(const Tensor& x) {
  TESSEL_CHECK(x.dtype() == DType::F32) << "sum_of_squares: " << x.str() << " is not F32";
  if (x.device().is_cpu()) return cpu::sum_of_squares(x.data<float>(), x.numel());
  DeviceBackend* device = x.storage()->backend();
  TESSEL_CHECK(device != nullptr) << "sum_of_squares: " << x.str() << " was not made by a device backend";
  return device->sum_of_squares(x);
}

double sum_of_squares(const std::vector<Tensor>& pieces) {
  double sum = 0;
  if (pieces.empty()) return sum;
  for (const Tensor& x : pieces) {
    TESSEL_CHECK(x.dtype() == DType::F32) << "sum_of_squares: " << x.str() << " is not F32";
    TESSEL_CHECK(x.device() == pieces.front().device() && x.storage()->backend() == pieces.front().storage()->backend())
        << "sum_of_squares: " << x.str() << " is not on " << pieces.front().device().str() << " like the first piece";
  }
  if (pieces.front().device().is_cpu()) {
    for (const Tensor& x : pieces) sum += cpu::sum_of_squares(x.data<float>(), x.numel());
    return sum;
  }
  DeviceBackend* device = pieces.front().storage()->backend();
  TESSEL_CHECK(device != nullptr) << "sum_of_squares: " << pieces.front().str() << " was not made by a device backend";
  for (double s : device->sums_of_squares(pieces)) sum += s;
  return sum;
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0.0 || !std::isfinite(norm)) return 1.0;
  const double scale = max_norm / (norm + kClipEpsilon);
  return scale < 1.0 ? scale : 1.0;
}

bool all_finite(const float* x, int64_t n) {
  TESSEL_CHECK(n >= 0) << "all_finite: negative size " << n;
  // Exponent bits all ones means inf or NaN; an integer test vectorizes where isfinite may not.
  constexpr uint32_t kExponent = 0x7f800000u;
  int bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    bad |= (bits & kExponent) == kExponent;
  }
  return bad == 0;
}

}  // namespace tessel

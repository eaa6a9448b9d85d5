// AdamW on the CPU; see cpu_kernels.h and core/adamw_scalars.h for the update.
#include <cmath>

#include "core/error.h"
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {

void adamw_update(const AdamWRange* ranges, size_t count) {
  for (size_t r = 0; r < count; ++r) {
    const AdamWRange& a = ranges[r];
    TESSEL_CHECK(a.n >= 0) << "adamw_update: negative size " << a.n;
    TESSEL_CHECK(a.n == 0 || (a.param != nullptr && a.grad != nullptr && a.m != nullptr && a.v != nullptr))
        << "adamw_update: null buffer for " << a.n << " elements";
  }
#pragma omp parallel
  for (size_t r = 0; r < count; ++r) {
    const AdamWRange& a = ranges[r];
    const AdamWScalars& k = a.k;
    float* param = a.param;
    const float* grad = a.grad;
    float* m = a.m;
    float* v = a.v;
    // Each thread takes its static share of the range without a barrier at the end.
#pragma omp for simd schedule(static) nowait
    for (int64_t i = 0; i < a.n; ++i) {
      const float g = grad[i] * k.grad_scale;
      const float mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
      const float vi = k.beta2 * v[i] + k.one_minus_beta2 * g * g;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps;
      param[i] = param[i] * k.decay - k.step_size * mi / denom;
    }
  }
}

}  // namespace cpu
}  // namespace tessel

// Residual connection: out = a + b.
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {

void residual_forward(float* out, const float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace cpu
}  // namespace tessel

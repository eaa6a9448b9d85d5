// RMSNorm forward and backward (LLaMA): out = x · rsqrt(mean(x²) + eps) · w.
#include <cmath>

#include "core/kernels/cpu/cpu_kernels.h"
#include "core/kernels/cpu/row_reduce.h"

namespace tessel {
namespace cpu {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* x = inp + r * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
    const float s = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    float* o = out + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = x[c] * s * weight[c];
    rstd[r] = s;
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  // With g = w·dout: dx = s·g − x·s³·mean(g·x).
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* x = inp + r * C;
    const float* dy = dout + r * C;
    const float s = rstd[r];
    float gx = 0.0f;
#pragma omp simd reduction(+ : gx)
    for (int64_t c = 0; c < C; ++c) gx += weight[c] * dy[c] * x[c];
    const float k = s * s * s * gx / static_cast<float>(C);
    float* d = dinp + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] += s * weight[c] * dy[c] - k * x[c];
  }
  chunked_row_sum(dweight, N, C, [&](int64_t r, float* acc) {
    const float* x = inp + r * C;
    const float* dy = dout + r * C;
    const float s = rstd[r];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) acc[c] += dy[c] * x[c] * s;
  });
}

}  // namespace cpu
}  // namespace tessel

// LayerNorm forward and backward (statistics in fp32, as llm.c's reference does).
#include <cmath>

#include "core/kernels/cpu/cpu_kernels.h"
#include "core/kernels/cpu/row_reduce.h"

namespace tessel {
namespace cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* x = inp + r * C;
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int64_t c = 0; c < C; ++c) m += x[c];
    m /= static_cast<float>(C);
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int64_t c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
    var /= static_cast<float>(C);
    const float s = 1.0f / std::sqrt(var + eps);
    float* o = out + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = s;
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* x = inp + r * C;
    const float* g = dout + r * C;
    const float m = mean[r];
    const float s = rstd[r];
    float dnorm_mean = 0.0f;
    float dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
    for (int64_t c = 0; c < C; ++c) {
      const float dnorm = weight[c] * g[c];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * (x[c] - m) * s;
    }
    dnorm_mean /= static_cast<float>(C);
    dnorm_norm_mean /= static_cast<float>(C);
    float* d = dinp + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float norm = (x[c] - m) * s;
      d[c] += (weight[c] * g[c] - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
  }
  chunked_row_sum(dweight, N, C, [&](int64_t r, float* acc) {
    const float* x = inp + r * C;
    const float* g = dout + r * C;
    const float m = mean[r];
    const float s = rstd[r];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) acc[c] += (x[c] - m) * s * g[c];
  });
  if (dbias != nullptr) add_column_sums(dbias, dout, N, C, C);
}

}  // namespace cpu
}  // namespace tessel

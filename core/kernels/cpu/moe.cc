// Mixture-of-Experts token permutation: rows of the token-major activations gathered into
// expert-major order and scattered back (core/model/moe_layer.h).
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {

void moe_gather_rows(float* out, const float* inp, const int32_t* rows, const float* scale, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const float* src = inp + static_cast<int64_t>(rows[r]) * C;
    float* dst = out + r * C;
    const float s = scale ? scale[r] : 1.0f;
    for (int64_t c = 0; c < C; ++c) dst[c] = s * src[c];
  }
}

// Rows are added in their permuted order, one column block per thread, so the sum is the same
// whatever the thread count.
void moe_scatter_add_rows(float* out, const float* inp, const int32_t* rows, const float* scale, int64_t M, int64_t C) {
  constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
    const int64_t c1 = c0 + kBlock < C ? c0 + kBlock : C;
    for (int64_t r = 0; r < M; ++r) {
      float* dst = out + static_cast<int64_t>(rows[r]) * C;
      const float* src = inp + r * C;
      const float s = scale ? scale[r] : 1.0f;
      for (int64_t c = c0; c < c1; ++c) dst[c] += s * src[c];
    }
  }
}

void moe_row_dots(float* out, const float* a, const float* b, const int32_t* rows, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const float* x = a + r * C;
    const float* y = b + static_cast<int64_t>(rows[r]) * C;
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += static_cast<double>(x[c]) * y[c];
    out[r] = static_cast<float>(sum);
  }
}

}  // namespace cpu
}  // namespace tessel

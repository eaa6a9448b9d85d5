// Token (and learned position) embedding lookup and its backward scatter-add.
#include "core/kernels/cpu/cpu_kernels.h"

#include <cstring>

#include "core/kernels/cpu/row_reduce.h"

namespace tessel {
namespace cpu {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int64_t B, int64_t T,
                       int64_t C, int64_t vocab_start, int64_t rows) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < B * T; ++r) {
    float* o = out + r * C;
    const int64_t row = static_cast<int64_t>(tokens[r]) - vocab_start;
    if (rows >= 0 && (row < 0 || row >= rows)) {  // another shard's token
      if (wpe != nullptr) {
        std::memcpy(o, wpe + (r % T) * C, static_cast<size_t>(C) * sizeof(float));
      } else {
        std::memset(o, 0, static_cast<size_t>(C) * sizeof(float));
      }
      continue;
    }
    const float* e = wte + row * C;
    if (wpe != nullptr) {
      const float* p = wpe + (r % T) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
    } else {
      std::memcpy(o, e, static_cast<size_t>(C) * sizeof(float));
    }
  }
}

void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int64_t B, int64_t T,
                        int64_t C, int64_t vocab_start, int64_t rows) {
  // Rows with the same token add into the same dwte row. Splitting the work by columns keeps
  // the row order fixed within each column, so the sums are deterministic without atomics.
  constexpr int64_t kCols = 64;
  const int64_t blocks = (C + kCols - 1) / kCols;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kCols;
    const int64_t c1 = c0 + kCols < C ? c0 + kCols : C;
    for (int64_t r = 0; r < B * T; ++r) {
      const int64_t row = static_cast<int64_t>(tokens[r]) - vocab_start;
      if (rows >= 0 && (row < 0 || row >= rows)) continue;  // another shard's token
      float* d = dwte + row * C;
      const float* g = dout + r * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) d[c] += g[c];
    }
  }
  if (dwpe != nullptr) {
    // dwpe[t] += Σ_b dout[b, t]: each t is its own row, summed over b in order.
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      float* d = dwpe + t * C;
      for (int64_t b = 0; b < B; ++b) {
        const float* g = dout + (b * T + t) * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) d[c] += g[c];
      }
    }
  }
}

}  // namespace cpu
}  // namespace tessel

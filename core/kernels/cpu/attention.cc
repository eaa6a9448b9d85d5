// Causal self-attention with grouped-query heads, flash-style on the CPU.
//
// Forward takes one query row at a time: scores against its keys (at most T of them, in a
// per-thread buffer), a max-subtracted softmax, the weighted sum of values, and the row's
// logsumexp, which is all backward needs to rebuild the probabilities. No T×T matrix is ever
// stored. Backward works per (batch, kv head) so each task owns its dk/dv rows: accumulation
// needs no atomics and the order of additions is fixed.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {
namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float* y, float alpha, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, int64_t B, int64_t T,
                       int64_t H, int64_t KV, int64_t D) {
  const int64_t ld = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(T));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < B * H * T; ++task) {
      const int64_t i = task % T;
      const int64_t h = (task / T) % H;
      const int64_t b = task / (T * H);
      const int64_t g = h / group;
      const float* q = qkv + (b * T + i) * ld + h * D;
      const float* k0 = qkv + b * T * ld + H * D + g * D;
      const float* v0 = k0 + KV * D;
      float m = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        const float s = dot(q, k0 + j * ld, D) * scale;
        scores[static_cast<size_t>(j)] = s;
        m = s > m ? s : m;
      }
      float* o = out + (b * T + i) * H * D + h * D;
      std::memset(o, 0, static_cast<size_t>(D) * sizeof(float));
      float sum = 0.0f;
      for (int64_t j = 0; j <= i; ++j) {
        const float p = std::exp(scores[static_cast<size_t>(j)] - m);
        sum += p;
        axpy(o, p, v0 + j * ld, D);
      }
      const float inv = 1.0f / sum;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) o[d] *= inv;
      lse[(b * H + h) * T + i] = m + std::log(sum);
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* lse, int64_t B, int64_t T, int64_t H, int64_t KV,
                        int64_t D) {
  const int64_t ld = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> probs(static_cast<size_t>(T));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < B * KV; ++task) {
      const int64_t b = task / KV;
      const int64_t g = task % KV;
      const float* k0 = qkv + b * T * ld + H * D + g * D;
      const float* v0 = k0 + KV * D;
      float* dk0 = dqkv + b * T * ld + H * D + g * D;
      float* dv0 = dk0 + KV * D;
      for (int64_t j = 0; j < T; ++j) {
        std::memset(dk0 + j * ld, 0, static_cast<size_t>(D) * sizeof(float));
        std::memset(dv0 + j * ld, 0, static_cast<size_t>(D) * sizeof(float));
      }
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          const float* q = qkv + (b * T + i) * ld + h * D;
          const float* o = out + (b * T + i) * H * D + h * D;
          const float* dO = dout + (b * T + i) * H * D + h * D;
          float* dq = dqkv + (b * T + i) * ld + h * D;
          const float row_lse = lse[(b * H + h) * T + i];
          const float di = dot(dO, o, D);
          std::memset(dq, 0, static_cast<size_t>(D) * sizeof(float));
          for (int64_t j = 0; j <= i; ++j) {
            const float p = std::exp(dot(q, k0 + j * ld, D) * scale - row_lse);
            const float dp = dot(dO, v0 + j * ld, D);
            const float ds = p * (dp - di) * scale;
            axpy(dq, ds, k0 + j * ld, D);
            axpy(dk0 + j * ld, ds, q, D);
            axpy(dv0 + j * ld, p, dO, D);
          }
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace tessel

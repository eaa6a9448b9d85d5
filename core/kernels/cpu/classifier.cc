// Fused classifier: LM-head matmul, softmax, cross-entropy and their backward, chunk by chunk.
//
// Full (N, V) logits would be the largest activation of a small model (256 rows × 50257 × 4 B
// = 51 MB); processing kChunkBytes of logits at a time keeps memory flat and the chunk in cache
// while its gradient is formed in place and pushed through both GEMMs right away.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {
namespace {
constexpr int64_t kChunkBytes = 16 << 20;
}  // namespace

void classifier_forward_backward(float* losses, float* dx, float* dweight, const float* x,
                                 const float* weight, const int32_t* targets, int64_t N,
                                 int64_t C, int64_t V, float dloss) {
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(N, kChunkBytes / (V * 4)));
  std::vector<float> logits(static_cast<size_t>(rows * V));
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t n = std::min(rows, N - r0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1.0f, x + r0 * C, C, weight, C,
                0.0f, logits.data(), V);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      float* z = logits.data() + r * V;
      float m = -INFINITY;
      for (int64_t v = 0; v < V; ++v) m = z[v] > m ? z[v] : m;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - m);
      const int32_t t = targets[r0 + r];
      losses[r0 + r] = m + std::log(sum) - z[t];
      if (dx != nullptr) {
        // dlogits = dloss · (softmax − onehot), in place.
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t v = 0; v < V; ++v) z[v] = dloss * std::exp(z[v] - m) * inv;
        z[t] -= dloss;
      }
    }
    if (dx != nullptr) {
      // dx (n, C) = dlogits (n, V) · W (V, C);  dW (V, C) += dlogitsᵀ · x
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, V, 1.0f, logits.data(), V,
                  weight, C, 0.0f, dx + r0 * C, C);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, n, 1.0f, logits.data(), V,
                  x + r0 * C, C, 1.0f, dweight, C);
    }
  }
}

}  // namespace cpu
}  // namespace tessel

// Vocab-parallel cross-entropy, the per-rank pieces (see cpu_kernels.h and
// core/model/vocab_parallel_loss.h for how they combine).
#include <algorithm>
#include <cmath>

#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {

void vocab_loss_stats(float* row_max, float* row_sum, float* target_logit, const float* logits, const int32_t* targets,
                      int64_t rows, int64_t Vl, int64_t vocab_start) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = logits + i * Vl;
    float m = -INFINITY;
    for (int64_t v = 0; v < Vl; ++v) m = std::max(m, row[v]);
    double s = 0;
    for (int64_t v = 0; v < Vl; ++v) s += std::exp(static_cast<double>(row[v] - m));
    const int64_t t = static_cast<int64_t>(targets[i]) - vocab_start;
    row_max[i] = m;
    row_sum[i] = static_cast<float>(s);
    target_logit[i] = t >= 0 && t < Vl ? row[t] : 0.0f;
  }
}

void vocab_loss_rescale(float* row_sum, const float* local_max, const float* row_max, int64_t n) {
  for (int64_t i = 0; i < n; ++i) row_sum[i] *= std::exp(local_max[i] - row_max[i]);
}

void vocab_loss_finish(float* losses, const float* row_sum, const float* row_max, const float* target_logit,
                       int64_t n) {
  for (int64_t i = 0; i < n; ++i) losses[i] = std::log(row_sum[i]) + row_max[i] - target_logit[i];
}

void vocab_loss_dlogits(float* logits, const int32_t* targets, const float* row_max, const float* row_sum, int64_t rows,
                        int64_t Vl, int64_t vocab_start, float dloss) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    float* row = logits + i * Vl;
    const float m = row_max[i], inv = 1.0f / row_sum[i];
    for (int64_t v = 0; v < Vl; ++v) row[v] = std::exp(row[v] - m) * inv * dloss;
    const int64_t t = static_cast<int64_t>(targets[i]) - vocab_start;
    if (t >= 0 && t < Vl) row[t] -= dloss;
  }
}

}  // namespace cpu
}  // namespace tessel

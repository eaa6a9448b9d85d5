// Deterministic sums over rows for the CPU kernels (bias, norm-weight and position gradients).
//
// Rows are grouped in fixed chunks of kRowChunk; each chunk sums into its own partial vector
// (in parallel), then the partials are added in chunk order. The order of additions depends
// only on N, never on the number of threads, so the result is bitwise reproducible.
#pragma once

#include <cstdint>
#include <vector>

namespace tessel {
namespace cpu {

constexpr int64_t kRowChunk = 32;

// out[c] += Σ_rows contribution, where add_row(row, acc) adds row's contribution into acc (C).
template <typename AddRow>
void chunked_row_sum(float* out, int64_t N, int64_t C, AddRow add_row) {
  const int64_t chunks = (N + kRowChunk - 1) / kRowChunk;
  std::vector<float> partial(static_cast<size_t>(chunks * C), 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < chunks; ++k) {
    float* acc = partial.data() + k * C;
    const int64_t end = (k + 1) * kRowChunk < N ? (k + 1) * kRowChunk : N;
    for (int64_t r = k * kRowChunk; r < end; ++r) add_row(r, acc);
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    float s = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) s += partial[static_cast<size_t>(k * C + c)];
    out[c] += s;
  }
}

// out[c] += Σ_r x[r·ld + c]: bias gradients.
inline void add_column_sums(float* out, const float* x, int64_t N, int64_t C, int64_t ld) {
  chunked_row_sum(out, N, C, [&](int64_t r, float* acc) {
    const float* g = x + r * ld;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) acc[c] += g[c];
  });
}

}  // namespace cpu
}  // namespace tessel

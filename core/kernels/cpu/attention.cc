// Causal self-attention with grouped-query heads, flash-style and tiled on the CPU.
//
// Forward takes a tile of kQueryTile query rows of one head and streams its keys and values in
// tiles of kKeyTile, keeping per row only the running max, the running sum and the output
// accumulator (online softmax); the row's logsumexp is saved for backward. The largest score
// buffer is kQueryTile × kKeyTile: no T×T matrix exists. Each key tile is transposed to (D, kKeyTile)
// so that scores for a query row are an outer-product sweep over keys that vectorizes.
// Backward works per (batch, kv head), so every task owns its dk/dv rows: accumulation needs no
// atomics, and the order of additions is fixed whatever the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/kernels/cpu/cpu_kernels.h"
#include "core/kernels/cpu/fast_math.h"

namespace tessel {
namespace cpu {
namespace {

constexpr int64_t kQueryTile = 32;
constexpr int64_t kKeyTile = 64;

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

// dst (D, kKeyTile) = rows [k0, k0 + nk) of the (row stride ld) matrix src, transposed.
inline void transpose_tile(float* dst, const float* src, int64_t ld, int64_t k0, int64_t nk, int64_t D) {
  for (int64_t j = 0; j < nk; ++j) {
    const float* row = src + (k0 + j) * ld;
    for (int64_t d = 0; d < D; ++d) dst[d * kKeyTile + j] = row[d];
  }
}

// out[j] = scale · Σ_d x[d] · tile[d][j] for j < n: one row against a transposed tile.
inline void row_times_tile(float* out, const float* x, const float* tile, int64_t n, int64_t D, float scale) {
  std::fill(out, out + n, 0.0f);
  for (int64_t d = 0; d < D; ++d) {
    const float xd = x[d] * scale;
    const float* t = tile + d * kKeyTile;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] += xd * t[j];
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, int64_t B, int64_t T, int64_t H, int64_t KV,
                       int64_t D) {
  const int64_t ld = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t tiles = (T + kQueryTile - 1) / kQueryTile;
#pragma omp parallel
  {
    std::vector<float> kt(static_cast<size_t>(D * kKeyTile)), s(kKeyTile);
    std::vector<float> acc(static_cast<size_t>(kQueryTile * D)), m(kQueryTile), l(kQueryTile);
    // Later query tiles see more keys: hand tiles out one at a time to balance the triangle.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < B * H * tiles; ++task) {
      const int64_t qt = task % tiles;
      const int64_t h = (task / tiles) % H;
      const int64_t b = task / (tiles * H);
      const int64_t g = h / group;
      const int64_t i0 = qt * kQueryTile;
      const int64_t nq = std::min(kQueryTile, T - i0);
      const float* k_base = qkv + b * T * ld + H * D + g * D;
      const float* v_base = k_base + KV * D;
      std::fill(m.begin(), m.end(), -INFINITY);
      std::fill(l.begin(), l.end(), 0.0f);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k0 = 0; k0 < i0 + nq; k0 += kKeyTile) {
        const int64_t nk = std::min(kKeyTile, i0 + nq - k0);
        transpose_tile(kt.data(), k_base, ld, k0, nk, D);
        for (int64_t r = 0; r < nq; ++r) {
          const int64_t i = i0 + r;
          const int64_t n = std::min(nk, i - k0 + 1);  // causal: keys j <= i
          if (n <= 0) continue;
          const float* q = qkv + (b * T + i) * ld + h * D;
          row_times_tile(s.data(), q, kt.data(), n, D, scale);
          float tile_max = -INFINITY;
          for (int64_t j = 0; j < n; ++j) tile_max = std::max(tile_max, s[static_cast<size_t>(j)]);
          const float m_new = std::max(m[static_cast<size_t>(r)], tile_max);
          const float alpha = exp_approx(m[static_cast<size_t>(r)] - m_new);  // 0 on the first tile
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < n; ++j) {
            const float p = exp_approx(s[static_cast<size_t>(j)] - m_new);
            s[static_cast<size_t>(j)] = p;
            sum += p;
          }
          float* a = acc.data() + r * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) a[d] *= alpha;
          for (int64_t j = 0; j < n; ++j) axpy(a, s[static_cast<size_t>(j)], v_base + (k0 + j) * ld, D);
          l[static_cast<size_t>(r)] = l[static_cast<size_t>(r)] * alpha + sum;
          m[static_cast<size_t>(r)] = m_new;
        }
      }
      for (int64_t r = 0; r < nq; ++r) {
        const float inv = 1.0f / l[static_cast<size_t>(r)];
        float* o = out + (b * T + i0 + r) * H * D + h * D;
        const float* a = acc.data() + r * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) o[d] = a[d] * inv;
        lse[(b * H + h) * T + i0 + r] = m[static_cast<size_t>(r)] + std::log(l[static_cast<size_t>(r)]);
      }
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse, int64_t B,
                        int64_t T, int64_t H, int64_t KV, int64_t D) {
  const int64_t ld = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> kt(static_cast<size_t>(D * kKeyTile)), vt(static_cast<size_t>(D * kKeyTile));
    std::vector<float> p(kKeyTile), ds(kKeyTile);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < B * KV; ++task) {
      const int64_t b = task / KV;
      const int64_t g = task % KV;
      const float* k_base = qkv + b * T * ld + H * D + g * D;
      const float* v_base = k_base + KV * D;
      float* dk_base = dqkv + b * T * ld + H * D + g * D;
      float* dv_base = dk_base + KV * D;
      for (int64_t j = 0; j < T; ++j) {
        std::memset(dk_base + j * ld, 0, static_cast<size_t>(D) * sizeof(float));
        std::memset(dv_base + j * ld, 0, static_cast<size_t>(D) * sizeof(float));
      }
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          std::memset(dqkv + (b * T + i) * ld + h * D, 0, static_cast<size_t>(D) * sizeof(float));
        }
        for (int64_t i0 = 0; i0 < T; i0 += kQueryTile) {
          const int64_t nq = std::min(kQueryTile, T - i0);
          for (int64_t k0 = 0; k0 < i0 + nq; k0 += kKeyTile) {
            const int64_t nk = std::min(kKeyTile, i0 + nq - k0);
            transpose_tile(kt.data(), k_base, ld, k0, nk, D);
            transpose_tile(vt.data(), v_base, ld, k0, nk, D);
            for (int64_t r = 0; r < nq; ++r) {
              const int64_t i = i0 + r;
              const int64_t n = std::min(nk, i - k0 + 1);
              if (n <= 0) continue;
              const float* q = qkv + (b * T + i) * ld + h * D;
              const float* o = out + (b * T + i) * H * D + h * D;
              const float* dO = dout + (b * T + i) * H * D + h * D;
              float* dq = dqkv + (b * T + i) * ld + h * D;
              const float row_lse = lse[(b * H + h) * T + i];
              const float di = dot(dO, o, D);
              // p = softmax row rebuilt from the saved logsumexp; ds = p · (dp − di) · scale.
              row_times_tile(p.data(), q, kt.data(), n, D, scale);
              row_times_tile(ds.data(), dO, vt.data(), n, D, 1.0f);
#pragma omp simd
              for (int64_t j = 0; j < n; ++j) {
                p[static_cast<size_t>(j)] = exp_approx(p[static_cast<size_t>(j)] - row_lse);
                ds[static_cast<size_t>(j)] = p[static_cast<size_t>(j)] * (ds[static_cast<size_t>(j)] - di) * scale;
              }
              for (int64_t j = 0; j < n; ++j) {
                axpy(dq, ds[static_cast<size_t>(j)], k_base + (k0 + j) * ld, D);
                axpy(dk_base + (k0 + j) * ld, ds[static_cast<size_t>(j)], q, D);
                axpy(dv_base + (k0 + j) * ld, p[static_cast<size_t>(j)], dO, D);
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace tessel

// Causal self-attention with grouped-query heads on CUDA, flash-style: online softmax over
// key chunks, one logsumexp per query row saved for backward, no T×T matrix in memory.
//
// Work split: a warp owns one row (a query row in the forward and for dq, a key row for dk and
// dv) and walks the other side in chunks of 32 rows, lane l scoring row l of the chunk; the
// chunk's probabilities then go round the warp by shuffles to update the accumulator, whose
// head dimensions are spread over the lanes (dimension d on lane d % 32). Each output row is
// written by exactly one warp, so backward needs no atomics and its sums run in a fixed order.
// Constraints: head dim D ≤ 128 (four dimensions per lane).
// This is the correct, deterministic kernel the parity tests pin down; tiling keys through
// shared memory for tensor cores (or cuDNN's fused SDPA) is the performance work that follows.
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kMaxDims = 4;  // per lane: D ≤ 32 · kMaxDims
constexpr int kWarps = 4;    // rows per block

struct Layout {
  int64_t T, H, KV, D, ld;  // ld = (H + 2·KV)·D, the qkv row stride
  __device__ int64_t q_col(int64_t h) const { return h * D; }
  __device__ int64_t k_col(int64_t g) const { return (H + g) * D; }
  __device__ int64_t v_col(int64_t g) const { return (H + KV + g) * D; }
};

template <typename T>
__device__ float dot_row(const float* shared_vec, const T* row, int64_t D) {
  float s = 0.0f;
  for (int64_t d = 0; d < D; ++d) s += shared_vec[d] * to_float(row[d]);
  return s;
}

// acc[k] (dimension lane + 32k) += Σ_r w_r · rows[r][d] over the chunk's n rows (row stride ld),
// where lane r of the warp holds w_r: the weights go round the warp by shuffles.
template <typename T>
__device__ void accumulate_rows(float (&acc)[kMaxDims], float w, const T* rows, int64_t ld, int64_t n, int64_t D,
                                int lane) {
  for (int64_t r = 0; r < n; ++r) {
    const float wr = __shfl_sync(0xffffffffu, w, int(r));
    const T* row = rows + r * ld;
    for (int k = 0; k < kMaxDims; ++k) {
      const int64_t d = lane + 32 * k;
      if (d < D) acc[k] += wr * to_float(row[d]);
    }
  }
}

// grid (ceil(T / kWarps), B·H), block 32·kWarps.
template <typename T>
__global__ void attention_forward_kernel(T* out, float* lse, const T* qkv, Layout L, float scale) {
  __shared__ float q_shared[kWarps][32 * kMaxDims];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y, b = bh / L.H, h = bh % L.H, g = h / (L.H / L.KV);
  const int64_t i = int64_t(blockIdx.x) * kWarps + warp;
  if (i >= L.T) return;  // whole warps leave together: no block-wide barrier follows
  const T* base = qkv + b * L.T * L.ld;
  float* q = q_shared[warp];
  for (int64_t d = lane; d < L.D; d += 32) q[d] = to_float(base[i * L.ld + L.q_col(h) + d]) * scale;
  __syncwarp();
  float acc[kMaxDims] = {0.0f, 0.0f, 0.0f, 0.0f};
  float m = -INFINITY, l = 0.0f;
  for (int64_t j0 = 0; j0 <= i; j0 += 32) {
    const int64_t j = j0 + lane;
    const float s = j <= i ? dot_row(q, base + j * L.ld + L.k_col(g), L.D) : -INFINITY;
    const float m_new = fmaxf(m, warp_max(s));
    const float p = j <= i ? expf(s - m_new) : 0.0f;
    const float alpha = expf(m - m_new);  // 0 on the first chunk (m = -inf)
    l = l * alpha + warp_sum(p);
    for (int k = 0; k < kMaxDims; ++k) acc[k] *= alpha;
    accumulate_rows(acc, p, base + j0 * L.ld + L.v_col(g), L.ld, min(int64_t(32), i - j0 + 1), L.D, lane);
    m = m_new;
  }
  T* o = out + (b * L.T + i) * L.H * L.D + h * L.D;
  for (int k = 0; k < kMaxDims; ++k) {
    const int64_t d = lane + 32 * k;
    if (d < L.D) o[d] = from_float<T>(acc[k] / l);
  }
  if (lane == 0) lse[bh * L.T + i] = m + logf(l);
}

// delta (B, H, T) = Σ_d dout · out per query row: the softmax backward's row term.
template <typename T>
__global__ void attention_delta_kernel(float* delta, const T* dout, const T* out, Layout L) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y, b = bh / L.H, h = bh % L.H;
  const int64_t i = int64_t(blockIdx.x) * kWarps + warp;
  if (i >= L.T) return;
  const int64_t row = (b * L.T + i) * L.H * L.D + h * L.D;
  float s = 0.0f;
  for (int64_t d = lane; d < L.D; d += 32) s += to_float(dout[row + d]) * to_float(out[row + d]);
  s = warp_sum(s);
  if (lane == 0) delta[bh * L.T + i] = s;
}

// dq for query row i of head h: Σ_j ds_ij · k_j, with ds = p · (dp − delta) · scale.
template <typename T>
__global__ void attention_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                                    Layout L, float scale) {
  __shared__ float q_shared[kWarps][32 * kMaxDims];
  __shared__ float do_shared[kWarps][32 * kMaxDims];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y, b = bh / L.H, h = bh % L.H, g = h / (L.H / L.KV);
  const int64_t i = int64_t(blockIdx.x) * kWarps + warp;
  if (i >= L.T) return;
  const T* base = qkv + b * L.T * L.ld;
  float* q = q_shared[warp];
  float* dO = do_shared[warp];
  const int64_t orow = (b * L.T + i) * L.H * L.D + h * L.D;
  for (int64_t d = lane; d < L.D; d += 32) {
    q[d] = to_float(base[i * L.ld + L.q_col(h) + d]) * scale;
    dO[d] = to_float(dout[orow + d]);
  }
  __syncwarp();
  const float row_lse = lse[bh * L.T + i], row_delta = delta[bh * L.T + i];
  float acc[kMaxDims] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t j0 = 0; j0 <= i; j0 += 32) {
    const int64_t j = j0 + lane;
    float ds = 0.0f;
    if (j <= i) {
      const float p = expf(dot_row(q, base + j * L.ld + L.k_col(g), L.D) - row_lse);
      const float dp = dot_row(dO, base + j * L.ld + L.v_col(g), L.D);
      ds = p * (dp - row_delta) * scale;
    }
    accumulate_rows(acc, ds, base + j0 * L.ld + L.k_col(g), L.ld, min(int64_t(32), i - j0 + 1), L.D, lane);
  }
  T* dq = dqkv + (b * L.T + i) * L.ld + L.q_col(h);
  for (int c = 0; c < kMaxDims; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < L.D) dq[d] = from_float<T>(acc[c]);
  }
}

// dk and dv for key row j of kv head g: sums over the query heads of the group and the query
// rows i ≥ j. grid (ceil(T / kWarps), B·KV).
template <typename T>
__global__ void attention_dkv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                                     Layout L, float scale) {
  __shared__ float k_shared[kWarps][32 * kMaxDims];
  __shared__ float v_shared[kWarps][32 * kMaxDims];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bg = blockIdx.y, b = bg / L.KV, g = bg % L.KV;
  const int64_t j = int64_t(blockIdx.x) * kWarps + warp;
  if (j >= L.T) return;
  const T* base = qkv + b * L.T * L.ld;
  float* k = k_shared[warp];
  float* v = v_shared[warp];
  for (int64_t d = lane; d < L.D; d += 32) {
    k[d] = to_float(base[j * L.ld + L.k_col(g) + d]) * scale;
    v[d] = to_float(base[j * L.ld + L.v_col(g) + d]);
  }
  __syncwarp();
  float dk[kMaxDims] = {0.0f, 0.0f, 0.0f, 0.0f}, dv[kMaxDims] = {0.0f, 0.0f, 0.0f, 0.0f};
  const int64_t group = L.H / L.KV;
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t bh = b * L.H + h;
    for (int64_t i0 = j; i0 < L.T; i0 += 32) {
      const int64_t i = i0 + lane;
      float p = 0.0f, ds = 0.0f;
      if (i < L.T) {
        const T* dO = dout + (b * L.T + i) * L.H * L.D + h * L.D;
        p = expf(dot_row(k, base + i * L.ld + L.q_col(h), L.D) - lse[bh * L.T + i]);
        ds = p * (dot_row(v, dO, L.D) - delta[bh * L.T + i]) * scale;
      }
      const int64_t n = min(int64_t(32), L.T - i0);
      for (int64_t r = 0; r < n; ++r) {
        const float pr = __shfl_sync(0xffffffffu, p, int(r));
        const float dsr = __shfl_sync(0xffffffffu, ds, int(r));
        const T* q = base + (i0 + r) * L.ld + L.q_col(h);
        const T* dO = dout + (b * L.T + i0 + r) * L.H * L.D + h * L.D;
        for (int c = 0; c < kMaxDims; ++c) {
          const int64_t d = lane + 32 * c;
          if (d < L.D) {
            dv[c] += pr * to_float(dO[d]);
            dk[c] += dsr * to_float(q[d]);
          }
        }
      }
    }
  }
  T* dk_row = dqkv + (b * L.T + j) * L.ld + L.k_col(g);
  T* dv_row = dqkv + (b * L.T + j) * L.ld + L.v_col(g);
  for (int c = 0; c < kMaxDims; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < L.D) {
      dk_row[d] = from_float<T>(dk[c]);
      dv_row[d] = from_float<T>(dv[c]);
    }
  }
}

Layout make_layout(int64_t T_, int64_t H, int64_t KV, int64_t D) {
  TESSEL_CHECK(D >= 1 && D <= 32 * kMaxDims)
      << "attention (CUDA): head dim " << D << " is above " << 32 * kMaxDims << ", the most this kernel supports";
  TESSEL_CHECK(KV >= 1 && H % KV == 0) << "attention (CUDA): " << H << " heads do not divide into " << KV
                                       << " kv heads";
  TESSEL_CHECK(T_ >= 0 && T_ / kWarps < (int64_t(1) << 31))
      << "attention (CUDA): sequence length " << T_ << " is beyond the grid's x dimension";
  return Layout{T_, H, KV, D, (H + 2 * KV) * D};
}

// Batch × heads run along the grid's y dimension, which holds at most 65535 blocks.
void check_grid_y(int64_t n) {
  TESSEL_CHECK(n <= 65535) << "attention (CUDA): batch x heads = " << n
                           << " is above the 65535 the kernels' grid allows; hint: lower batch.micro";
}

}  // namespace

template <typename T>
void attention_forward(T* out, float* lse, const T* qkv, int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D,
                       cudaStream_t stream) {
  if (B * T_ == 0) return;
  const Layout L = make_layout(T_, H, KV, D);
  check_grid_y(B * H);
  const dim3 grid(unsigned(ceil_div(T_, kWarps)), unsigned(B * H));
  attention_forward_kernel<<<grid, 32 * kWarps, 0, stream>>>(out, lse, qkv, L, 1.0f / sqrtf(float(D)));
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void attention_backward(T* dqkv, float* delta, const T* dout, const T* qkv, const T* out, const float* lse, int64_t B,
                        int64_t T_, int64_t H, int64_t KV, int64_t D, cudaStream_t stream) {
  if (B * T_ == 0) return;
  const Layout L = make_layout(T_, H, KV, D);
  check_grid_y(B * H);
  const float scale = 1.0f / sqrtf(float(D));
  const dim3 rows(unsigned(ceil_div(T_, kWarps)), unsigned(B * H));
  attention_delta_kernel<<<rows, 32 * kWarps, 0, stream>>>(delta, dout, out, L);
  TESSEL_CUDA_LAUNCH_CHECK();
  attention_dq_kernel<<<rows, 32 * kWarps, 0, stream>>>(dqkv, dout, qkv, lse, delta, L, scale);
  TESSEL_CUDA_LAUNCH_CHECK();
  const dim3 keys(unsigned(ceil_div(T_, kWarps)), unsigned(B * KV));
  attention_dkv_kernel<<<keys, 32 * kWarps, 0, stream>>>(dqkv, dout, qkv, lse, delta, L, scale);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T)                                                                                                 \
  template void attention_forward<T>(T*, float*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, cudaStream_t); \
  template void attention_backward<T>(T*, float*, const T*, const T*, const T*, const float*, int64_t, int64_t,        \
                                      int64_t, int64_t, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

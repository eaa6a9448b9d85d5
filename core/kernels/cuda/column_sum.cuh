// Deterministic column sums on CUDA: out_k[c] += Σ_r term(r, c)_k over the N rows of an (N, C)
// problem, the shape of every parameter gradient that sums over tokens: LayerNorm's weight and
// bias, RMSNorm's weight, biases, learned positions. One thread per column looping over all N
// rows runs only C threads, latency-bound (LayerNorm's backward took 2.3 ms that way at N = 8192,
// C = 768, 31x PyTorch's), so the rows are cut in two stages, with no atomics:
//  1. A grid of (column tiles × row chunks) blocks of kColumnWarps warps. Block (x, y) sums rows
//     [y·kColumnChunkRows, (y+1)·kColumnChunkRows) of columns [x·kColumnTile, (x+1)·kColumnTile):
//     lane l takes column l of the tile (a warp reads a row's tile contiguously), warp w rows w,
//     w + kColumnWarps, ... of the chunk in order; the warps' sums are added in warp order
//     through shared memory, and the chunk's sum goes to scratch (K, chunks, C).
//  2. One block per column tile and output adds the chunks' partials to out the same way (warp w
//     takes chunks w, w + kColumnWarps, ...).
// With one chunk (N ≤ kColumnChunkRows) stage 1 adds to out itself and scratch is not used.
// The order of every addition depends on N and C only, so results repeat bitwise.
//
// Sizes: 32 columns per tile is one per lane: 64 contiguous bytes of a bf16 row per warp, whose
// line's other half the neighbouring tile's block (next in blockIdx.x, so scheduled alongside)
// reads from L2. 256-row chunks give each thread 32 rows to add before the combine, and
// (C/32)·(N/256) blocks: 768 of 256 threads at N = 8192, C = 768, ~6 per SM of an H100/H200.
// Scratch is N/256·C floats per output (96 KiB there); stage 2 reads it once.
//
// The caller owns the scratch (sized with column_sum_scratch_floats, cuda_kernels.h, defined in
// bias_grad.cu); column_sums only queues work on its stream.
#pragma once

#include <cstdint>

#include "core/error.h"
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {

constexpr int kColumnTile = 32;
constexpr int kColumnWarps = 8;
constexpr int64_t kColumnChunkRows = 256;
constexpr int64_t kColumnMaxChunks = 65535;  // gridDim.y

// The K outputs of a column sum, each (C) fp32, accumulated into; a null one is skipped.
template <int K>
struct ColumnOutputs {
  float* out[K];
};

// Sums, over rows [r0, r1), of row(r, v) (which sets v[0..K) to row r's terms for this thread's
// column) for a (kColumnTile, kColumnWarps) block: warp w adds rows r0 + w, r0 + w + kColumnWarps,
// ... in order, then the warps' sums are added in warp order. Threads with active false (columns
// past C) add nothing but must call this (it synchronizes the block). The sums are valid in warp 0.
template <int K, typename Row>
__device__ __forceinline__ void block_column_sum(float (&total)[K], int64_t r0, int64_t r1, bool active, Row row) {
  __shared__ float sums[K][kColumnWarps][kColumnTile];
  const int lane = threadIdx.x, warp = threadIdx.y;
  float acc[K];
#pragma unroll
  for (int k = 0; k < K; ++k) acc[k] = 0.0f;
  if (active) {
#pragma unroll 4
    for (int64_t r = r0 + warp; r < r1; r += kColumnWarps) {
      float v[K];
      row(r, v);
#pragma unroll
      for (int k = 0; k < K; ++k) acc[k] += v[k];
    }
  }
#pragma unroll
  for (int k = 0; k < K; ++k) sums[k][warp][lane] = acc[k];
  __syncthreads();
#pragma unroll
  for (int k = 0; k < K; ++k) {
    float s = 0.0f;
    if (warp == 0)
      for (int w = 0; w < kColumnWarps; ++w) s += sums[k][w][lane];
    total[k] = s;
  }
}

// Stage 1. A Term has `static constexpr int kOutputs` and
// `__device__ void operator()(int64_t r, int64_t c, float (&v)[kOutputs]) const`.
template <typename Term>
__global__ void __launch_bounds__(kColumnTile* kColumnWarps)
    column_sum_partials_kernel(ColumnOutputs<Term::kOutputs> out, float* partials, int64_t N, int64_t C, Term term) {
  constexpr int K = Term::kOutputs;
  const int64_t c = int64_t(blockIdx.x) * kColumnTile + threadIdx.x;
  const int64_t chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t r0 = chunk * kColumnChunkRows;
  const int64_t r1 = r0 + kColumnChunkRows < N ? r0 + kColumnChunkRows : N;
  float total[K];
  block_column_sum<K>(total, r0, r1, c < C, [&](int64_t r, float(&v)[K]) { term(r, c, v); });
  if (threadIdx.y != 0 || c >= C) return;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    if (chunks == 1) {
      if (out.out[k] != nullptr) out.out[k][c] += total[k];
    } else {
      partials[(k * chunks + chunk) * C + c] = total[k];
    }
  }
}

// Stage 2: block (x, k) adds output k's partials (chunks, C) of columns tile x to out[k].
template <int K>
__global__ void __launch_bounds__(kColumnTile* kColumnWarps)
    column_sum_finish_kernel(ColumnOutputs<K> out, const float* partials, int64_t chunks, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * kColumnTile + threadIdx.x;
  const int k = blockIdx.y;
  const float* p = partials + int64_t(k) * chunks * C;
  float total[1];
  block_column_sum<1>(total, 0, chunks, c < C, [&](int64_t j, float(&v)[1]) { v[0] = p[j * C + c]; });
  float* o = nullptr;  // out.out[k], selected without indexing the parameter (which would copy it to the stack)
#pragma unroll
  for (int i = 0; i < K; ++i)
    if (i == k) o = out.out[i];
  if (threadIdx.y == 0 && c < C && o != nullptr) o[c] += total[0];
}

// out.out[k][c] += Σ_r term(r, c)[k] for r < N, c < C, queued on `stream`; `scratch` holds
// scratch_floats floats, K · column_sum_scratch_floats(N, C) at least (cuda_kernels.h). `op`
// names the launcher in errors.
template <typename Term>
void column_sums(const ColumnOutputs<Term::kOutputs>& out, float* scratch, int64_t scratch_floats, int64_t N, int64_t C,
                 const Term& term, cudaStream_t stream, const char* op) {
  constexpr int K = Term::kOutputs;
  if (N <= 0 || C <= 0) return;
  const int64_t chunks = ceil_div(N, kColumnChunkRows), tiles = ceil_div(C, kColumnTile);
  TESSEL_CHECK(chunks <= kColumnMaxChunks) << op << " (CUDA): " << N << " rows; at most "
                                           << kColumnMaxChunks * kColumnChunkRows << " are summed in one call";
  TESSEL_CHECK(tiles <= INT32_MAX) << op << " (CUDA): " << C << " columns are too many for one grid";
  const int64_t needed = K * column_sum_scratch_floats(N, C);
  TESSEL_CHECK(scratch_floats >= needed && (needed == 0 || scratch != nullptr))
      << op << " (CUDA): scratch of " << scratch_floats << " floats for " << N << " rows of " << C << " columns, "
      << needed << " needed (hint: size it with column_sum_scratch_floats)";
  const dim3 block(kColumnTile, kColumnWarps);
  column_sum_partials_kernel<<<dim3(unsigned(tiles), unsigned(chunks)), block, 0, stream>>>(out, scratch, N, C, term);
  TESSEL_CUDA_LAUNCH_CHECK();
  if (chunks == 1) return;
  column_sum_finish_kernel<K><<<dim3(unsigned(tiles), unsigned(K)), block, 0, stream>>>(out, scratch, chunks, C);
  TESSEL_CUDA_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace tessel

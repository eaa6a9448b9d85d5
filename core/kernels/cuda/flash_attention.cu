// Causal self-attention with grouped-query heads on tensor cores, FlashAttention-2 style, for
// bf16 and fp16 storage with fp32 accumulation. Same layouts and results as attention.cu's
// reference kernel (which stays the fp32 path and the one the parity tests pin this one to):
// qkv (B*T, (H + 2*KV)*D), out (B*T, H*D), lse (B, H, T) = natural-log logsumexp of the scaled
// scores, scale = 1/sqrt(D); query head h reads kv head h / (H/KV).
//
// Work split. Every product is a warp's mma.sync.m16n8k16 (bf16/fp16 in, fp32 accumulators) on
// a 16-row slice: a warp owns 16 rows of the block's tile and walks the other side tile by tile.
//  - Forward: a block takes 128 query rows (8 warps × 16) of one head and streams 64-key tiles of
//    K and V through shared memory (cp.async, double-buffered), keeping per row only the running
//    max, the running sum and the output accumulator (online softmax in base 2: scores are
//    multiplied by log2(e)/sqrt(D) once, so every exponential is one exp2f).
//  - Backward, three kernels and no atomics, so that every sum runs in a fixed order and a
//    second run is bitwise the first: delta = rowsum(dO ∘ O) per query row; dK and dV for a
//    64-key tile (4 warps × 16 keys), looping over the group's query heads in order and over
//    their query tiles (64 rows a step, 32 at D = 128); dQ for a 64-row query tile (4 warps ×
//    16), looping over 64-key tiles. Both recompute P from the saved logsumexp instead of
//    storing it, and both double-buffer the side they stream.
// Why these tiles: a warp's 16 rows are the mma's M; 128 forward rows per block load each K/V
// tile once for 8 warps, and 64 keys keep the scores (16 × 64 fp32, 32 registers) beside Q's
// fragments and the 16 × D output in registers: 137 registers at D = 64, 251 at D = 128, no
// spills. The backward kernels hold two score tiles and one or two 16 × D accumulators per
// warp, hence 4 warps and the narrower dK/dV step at D = 128 (its registers at 64 rows spill).
// Causal: a warp skips the key tiles that lie wholly above its rows' diagonal and masks only the
// tiles that cross it. Any T: rows past T load as zeros (cp.async zero-fill, so no garbage, and
// so no NaN, reaches an mma) and are never written.
// Constraints: D = 64 or 128 (templated, so every fragment array has a compile-time size and
// lives in registers); storage bf16 or fp16 (the products need 16-bit inputs); qkv, out, dout
// and dqkv 16-byte aligned (every global access moves 16 bytes).
//
// Shared tiles are row-major with rows padded by 8 elements (16 bytes): a row is then 144 or
// 272 bytes, so the 8 row addresses of one ldmatrix phase (same column, consecutive rows) start
// in 8 different 16-byte bank groups and never conflict; cp.async writes whole rows, also
// conflict-free. Padding rather than an XOR swizzle: simpler to index, for 6% (D = 128) or
// 12.5% (D = 64) more memory.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), with
// lane = 4·gid + tig (gid = lane/4 in 0..7, tig = lane%4 in 0..3):
//   A (16 × 16, row-major), four 32-bit registers of two elements each, lower column in the low
//     half: a[0] = (row gid, cols 2tig, 2tig+1), a[1] = (row gid+8, same cols),
//           a[2] = (row gid, cols 2tig+8, 2tig+9), a[3] = (row gid+8, cols 2tig+8, 2tig+9).
//   B (16 × 8, "col": indexed [k][n]), two registers: b[0] = (k 2tig, 2tig+1; n gid),
//           b[1] = (k 2tig+8, 2tig+9; n gid).
//   C (16 × 8, fp32), four floats: c[0], c[1] = (row gid, cols 2tig, 2tig+1),
//           c[2], c[3] = (row gid+8, cols 2tig, 2tig+1).
//   ldmatrix.x4: lanes 8q..8q+7 give the row addresses of 8×8 matrix q, which lands in register
//     q; there lane l holds row l/4, columns 2(l%4), 2(l%4)+1. With .trans it holds the stored
//     matrix's rows 2(l%4), 2(l%4)+1 at column l/4 instead.
// Each helper below says how its addresses produce these fragments.
#include <cstring>
#include <type_traits>

#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr int kPad = 8;  // elements added to every shared row (see the bank note above)

constexpr int kForwardWarps = 8;
constexpr int kForwardRows = 16 * kForwardWarps;  // query rows per forward block
constexpr int kForwardKeys = 64;                  // keys per streamed K/V tile
constexpr int kBackwardWarps = 4;
constexpr int kDkvKeys = 16 * kBackwardWarps;  // keys per dK/dV block
constexpr int kDqRows = 16 * kBackwardWarps;   // query rows per dQ block
// Query rows per step of the dK/dV block and keys per step of the dQ block. Each step holds two
// 16 × step fp32 score tiles per warp beside the 16 × D accumulators (two of them in dK/dV):
// at D = 128 a 64-wide dK/dV step no longer fits in 255 registers, so it takes 32 rows.
template <int D>
constexpr int kDkvQueries = D == 128 ? 32 : 64;
template <int D>
constexpr int kDqKeys = 64;
constexpr int kDeltaThreads = 256;

__host__ __device__ constexpr int padded(int D) { return D + kPad; }

// Batch rows of qkv are T rows of ld = (H + 2·KV)·D elements; out and dout rows are H·D.
struct Layout {
  int64_t T, H, KV, ld;
  __device__ int64_t q_col(int64_t h, int D) const { return h * D; }
  __device__ int64_t k_col(int64_t g, int D) const { return (H + g) * D; }
  __device__ int64_t v_col(int64_t g, int D) const { return (H + KV + g) * D; }
};

// ---- PTX wrappers

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared without a trip through registers. When !valid the source size is 0:
// nothing is read and the 16 bytes are zero-filled, which is how rows past T become zeros.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row_address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row_address)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row_address)));
}

// c (16 × 8, fp32) += a (16 × 16) · b (16 × 8), inputs in T.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    static_assert(std::is_same<T, __half>::value, "flash attention runs on bf16 or fp16 storage");
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats rounded to T in one 32-bit register, `lo` in the low half (the lower column, as
// fragments and memory order want it).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t u;
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    memcpy(&u, &v, 4);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    memcpy(&u, &v, 4);
  }
  return u;
}

template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t u) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    __nv_bfloat162 v;
    memcpy(&v, &u, 4);
    return __bfloat1622float2(v);
  } else {
    __half2 v;
    memcpy(&v, &u, 4);
    return __half22float2(v);
  }
}

// ---- Tiles and warp products

// tile (kRows, D + kPad) ← rows [0, kRows) of src (row stride ld); rows at or past rows_valid
// are zero-filled. Thread c of the block copies 16-byte pieces c, c + kThreads, ...: consecutive
// threads take consecutive pieces of a row, so global reads coalesce. Row 0 of src must exist
// (every tile starts below T); it stands in as the address of the rows that read nothing.
template <int kRows, int D, int kThreads, typename T>
__device__ __forceinline__ void load_tile(T* tile, const T* src, int64_t ld, int64_t rows_valid, int tid) {
  constexpr int kPieces = D / 8;
  static_assert(kRows * kPieces % kThreads == 0, "whole rounds of 16-byte pieces per thread");
#pragma unroll
  for (int i = 0; i < kRows * kPieces / kThreads; ++i) {
    const int c = tid + i * kThreads, r = c / kPieces, col = (c % kPieces) * 8;
    const bool valid = r < rows_valid;
    cp_async_16(tile + r * padded(D) + col, valid ? src + r * ld + col : src, valid);
  }
}

// The A fragment of rows [0, 16) and columns [16kk, 16kk + 16) of a row-major shared tile, given
// a_lane = tile + (lane % 16)·stride + (lane / 16)·8: lanes 0-7 address rows 0-7 and lanes 8-15
// rows 8-15 at column 16kk, lanes 16-31 the same rows at 16kk + 8. So register 0 is (rows 0-7,
// cols 0-7): lane l holds row l/4 = gid, cols 2tig, 2tig+1, which is a[0]; register 1 (rows
// 8-15, cols 0-7) is a[1]; register 2 (rows 0-7, cols 8-15) is a[2]; register 3 is a[3].
template <typename T>
__device__ __forceinline__ const T* a_lane_address(const T* tile, int stride, int lane) {
  return tile + (lane % 16) * stride + (lane / 16) * 8;
}

// acc (16 × N) += A (16 × K) · Bᵀ, where B (N × K) is row-major in shared memory (row stride S):
// the products whose right side is stored with the reduced dimension along its rows (Q·Kᵀ,
// dO·Vᵀ, K·Qᵀ, V·dOᵀ). a_frag(kk, a) fills the A fragment of columns [16kk, 16kk + 16).
// B fragments, two n-tiles per ldmatrix.x4: lanes 0-7 address rows n0..n0+7 at column k0,
// lanes 8-15 the same rows at k0 + 8, lanes 16-23 rows n0+8..n0+15 at k0, lanes 24-31 those
// rows at k0 + 8. In register 0 lane l holds B's stored row n0 + gid, columns k0 + 2tig, +1,
// i.e. Bᵀ[k = 2tig, 2tig+1][n = gid] = b[0] of n-tile n0; register 1 (columns k0+8..) is its
// b[1]; registers 2 and 3 are b[0], b[1] of n-tile n0 + 8.
template <int N, int K, int S, typename T, typename AFrag>
__device__ __forceinline__ void mma_abt(float (&acc)[N / 8][4], AFrag a_frag, const T* b, int lane) {
  const T* b_lane = b + (lane % 8 + (lane / 16) * 8) * S + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t a[4];
    a_frag(kk, a);
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      uint32_t r[4];
      ldmatrix_x4(r, b_lane + np * 16 * S + kk * 16);
      mma_16816<T>(acc[2 * np], a, r[0], r[1]);
      mma_16816<T>(acc[2 * np + 1], a, r[2], r[3]);
    }
  }
}

// acc (16 × N) += A (16 × K) · B, where B (K × N) is row-major in shared memory (row stride S)
// and A is in registers: P·V, dS·K, Pᵀ·dO, dSᵀ·Q. B's fragments need its columns, hence .trans:
// lanes 0-7 address rows k0..k0+7 at column n0, lanes 8-15 rows k0+8..k0+15 at n0, lanes 16-23
// rows k0..k0+7 at n0 + 8, lanes 24-31 rows k0+8..k0+15 at n0 + 8. Transposed, lane l gets from
// matrix 0 the stored rows k0 + 2tig, +1 at column n0 + gid: B[k = 2tig, 2tig+1][n = gid] = b[0]
// of n-tile n0; matrix 1 (rows k0+8..) gives its b[1]; matrices 2 and 3 give b[0], b[1] of
// n-tile n0 + 8.
template <int N, int K, int S, typename T>
__device__ __forceinline__ void mma_ab(float (&acc)[N / 8][4], const uint32_t (&a)[K / 16][4], const T* b, int lane) {
  const T* b_lane = b + (lane % 8 + ((lane / 8) % 2) * 8) * S + (lane / 16) * 8;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      uint32_t r[4];
      ldmatrix_x4_trans(r, b_lane + kk * 16 * S + np * 16);
      mma_16816<T>(acc[2 * np], a[kk], r[0], r[1]);
      mma_16816<T>(acc[2 * np + 1], a[kk], r[2], r[3]);
    }
  }
}

// An accumulator (16 × N, fp32) rounded to T as the A operand of the next product, its N
// columns becoming the reduced dimension. Columns [16kk, 16kk + 16) are n-tiles 2kk and 2kk+1:
// a[0] = (row gid, cols 2tig, +1) = c[0], c[1] of n-tile 2kk; a[1] = (row gid+8, same) = its
// c[2], c[3]; a[2] = (row gid, cols 8 + 2tig, +1) = c[0], c[1] of n-tile 2kk+1; a[3] its c[2], c[3].
template <int N, typename T>
__device__ __forceinline__ void accumulator_to_a(uint32_t (&a)[N / 16][4], const float (&c)[N / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk) {
    a[kk][0] = pack2<T>(c[2 * kk][0], c[2 * kk][1]);
    a[kk][1] = pack2<T>(c[2 * kk][2], c[2 * kk][3]);
    a[kk][2] = pack2<T>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[kk][3] = pack2<T>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
  }
}

// A warp's 16 × D accumulator, rows gid scaled by s0 and rows gid + 8 by s1, rounded to T and
// written to rows [0, rows_valid) of dst (row stride ld) with 16-byte stores. It goes through
// `stage`, the warp's own 16 rows of a shared tile (only this warp reads them, so __syncwarp
// orders the exchange): lane (gid, tig) writes its pairs at columns 8nt + 2tig, which with the
// padded stride (an odd number of 16-byte groups) puts the 32 lanes on 32 different banks.
template <int D, typename T>
__device__ __forceinline__ void store_rows(T* dst, int64_t ld, int64_t rows_valid, T* stage,
                                           const float (&acc)[D / 8][4], float s0, float s1, int lane) {
  constexpr int S = padded(D), kPieces = D / 8;
  const int gid = lane / 4, tig = lane % 4;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    *reinterpret_cast<uint32_t*>(stage + gid * S + 8 * nt + 2 * tig) = pack2<T>(acc[nt][0] * s0, acc[nt][1] * s0);
    *reinterpret_cast<uint32_t*>(stage + (gid + 8) * S + 8 * nt + 2 * tig) = pack2<T>(acc[nt][2] * s1, acc[nt][3] * s1);
  }
  __syncwarp();
#pragma unroll
  for (int i = 0; i < 16 * kPieces / 32; ++i) {
    const int c = lane + 32 * i, r = c / kPieces, col = (c % kPieces) * 8;
    if (r < rows_valid)
      *reinterpret_cast<uint4*>(dst + r * ld + col) = *reinterpret_cast<const uint4*>(stage + r * S + col);
  }
}

// ---- Kernels

// grid (ceil(T / 128), B·H), block 256, dynamic shared memory forward_smem_bytes<T, D>().
// Blocks take query tiles from the last down: the longest rows of the causal triangle start
// first and the short ones fill in behind them.
template <typename T, int D>
__global__ void __launch_bounds__(32 * kForwardWarps)
    flash_attention_forward_kernel(T* out, float* lse, const T* qkv, Layout L, float scale_log2) {
  constexpr int S = padded(D), kM = kForwardRows, kN = kForwardKeys, kThreads = 32 * kForwardWarps;
  extern __shared__ __align__(16) unsigned char smem[];
  T* q_tile = reinterpret_cast<T*>(smem);  // (kM, S)
  T* k_tiles = q_tile + kM * S;            // 2 × (kN, S): tile j in buffer j % 2
  T* v_tiles = k_tiles + 2 * kN * S;       // 2 × (kN, S)
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int64_t m0 = int64_t(gridDim.x - 1 - blockIdx.x) * kM;
  const int64_t bh = blockIdx.y, b = bh / L.H, h = bh % L.H, g = h / (L.H / L.KV);
  const T* base = qkv + b * L.T * L.ld;
  const T* k_src = base + L.k_col(g, D);
  const T* v_src = base + L.v_col(g, D);
  const int n_tiles = int((min(L.T, m0 + kM) + kN - 1) / kN);  // causal: no key past the last row

  load_tile<kM, D, kThreads>(q_tile, base + m0 * L.ld + L.q_col(h, D), L.ld, L.T - m0, tid);
  cp_async_commit();
  load_tile<kN, D, kThreads>(k_tiles, k_src, L.ld, L.T, tid);
  load_tile<kN, D, kThreads>(v_tiles, v_src, L.ld, L.T, tid);
  cp_async_commit();
  cp_async_wait<1>();  // Q has landed; the first K/V tile may still be on its way
  __syncthreads();

  const int row0 = 16 * warp;           // the warp's rows in the tile
  const int64_t row_first = m0 + row0;  // ... and the first of them in the sequence
  uint32_t qf[D / 16][4];               // Q's A fragments, held for the whole key loop
  {
    const T* q_lane = a_lane_address(q_tile + row0 * S, S, lane);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], q_lane + 16 * kk);
  }
  // Rows gid and gid + 8 of the warp's slice: running max (base 2, scaled), running sum (this
  // thread's columns only until the end), output accumulator (16 × D as D/8 n-tiles).
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float o[D / 8][4] = {};

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {
      const int64_t next = int64_t(j + 1) * kN;
      const int buf = (j + 1) % 2;
      load_tile<kN, D, kThreads>(k_tiles + buf * kN * S, k_src + next * L.ld, L.ld, L.T - next, tid);
      load_tile<kN, D, kThreads>(v_tiles + buf * kN * S, v_src + next * L.ld, L.ld, L.T - next, tid);
      cp_async_commit();
      cp_async_wait<1>();  // tile j has landed; tile j + 1 loads under this tile's math
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t n0 = int64_t(j) * kN;
    if (n0 <= row_first + 15) {  // else every key of the tile is above all the warp's rows
      const T* k_tile = k_tiles + (j % 2) * kN * S;
      const T* v_tile = v_tiles + (j % 2) * kN * S;
      // s (16 × kN) = Q·Kᵀ; element (nt, e) is row gid + 8(e/2), key n0 + 8nt + 2tig + e%2.
      float s[kN / 8][4] = {};
      mma_abt<kN, D, S, T>(
          s,
          [&](int kk, uint32_t(&a)[4]) {
#pragma unroll
            for (int x = 0; x < 4; ++x) a[x] = qf[kk][x];
          },
          k_tile, lane);
      const bool diagonal = n0 + kN - 1 > row_first;  // some key of the tile lies above some row
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v = s[nt][e] * scale_log2;
          // Keys past T sit above every row below T, so this mask hides them too.
          if (diagonal && n0 + 8 * nt + 2 * tig + (e % 2) > row_first + gid + 8 * (e / 2)) v = -INFINITY;
          s[nt][e] = v;
          tile_max[e / 2] = fmaxf(tile_max[e / 2], v);
        }
      float alpha[2], shift[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        // A row's 16 values per n-tile pair live on the 4 lanes of its quad: reduce over them.
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
        const float m_new = fmaxf(m[r], tile_max[r]);
        // A row with every key so far masked keeps exponentials of exactly 0, not NaN (-inf + inf).
        shift[r] = m_new == -INFINITY ? 0.0f : m_new;
        alpha[r] = exp2f(m[r] - shift[r]);  // 0 on the row's first tile (m = -inf)
        m[r] = m_new;
      }
      float tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2f(s[nt][e] - shift[e / 2]);
          s[nt][e] = p;
          tile_sum[e / 2] += p;
        }
#pragma unroll
      for (int r = 0; r < 2; ++r) l[r] = l[r] * alpha[r] + tile_sum[r];
#pragma unroll
      for (int nt = 0; nt < D / 8; ++nt) {
        o[nt][0] *= alpha[0];
        o[nt][1] *= alpha[0];
        o[nt][2] *= alpha[1];
        o[nt][3] *= alpha[1];
      }
      // o (16 × D) += P (16 × kN, rounded to T as the tensor cores take it) · V (kN × D).
      uint32_t pf[kN / 16][4];
      accumulator_to_a<kN, T>(pf, s);
      mma_ab<D, kN, S, T>(o, pf, v_tile, lane);
    }
    __syncthreads();  // the next iteration's prefetch overwrites the buffer just read
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  if (tig == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t i = row_first + gid + 8 * r;
      // m is in log2 units of the scaled score: lse = ln Σ exp(s) = m·ln 2 + ln l.
      if (i < L.T) lse[bh * L.T + i] = m[r] * kLn2 + logf(l[r]);
    }
  }
  // Every row below T has seen key 0, so l > 0 there; rows past T are not written.
  store_rows<D>(out + (b * L.T + row_first) * L.H * D + h * D, L.H * D, L.T - row_first, q_tile + row0 * S, o,
                1.0f / l[0], 1.0f / l[1], lane);
}

// delta (B, H, T) = Σ_d dO · O per query row: the softmax backward's row term, in fp32 from the
// stored (rounded) output, as the reference computes it. A row of out and dout is D contiguous
// elements at row index (b·T + i)·H + h; D/8 consecutive lanes take one row, 16 bytes each, and
// add their partial sums by shuffles in a fixed order. grid ceil(B·T·H / (256 / (D/8))), block 256.
template <typename T, int D>
__global__ void __launch_bounds__(kDeltaThreads)
    flash_attention_delta_kernel(float* delta, const T* dout, const T* out, int64_t rows, int64_t T_, int64_t H) {
  constexpr int kLanes = D / 8;  // lanes per row: 8 or 16, so a row never straddles two warps
  const int64_t row = int64_t(blockIdx.x) * (kDeltaThreads / kLanes) + threadIdx.x / kLanes;
  const int piece = threadIdx.x % kLanes;
  float s = 0.0f;
  if (row < rows) {
    const uint4 x = *reinterpret_cast<const uint4*>(dout + row * D + piece * 8);
    const uint4 y = *reinterpret_cast<const uint4*>(out + row * D + piece * 8);
    const uint32_t xs[4] = {x.x, x.y, x.z, x.w}, ys[4] = {y.x, y.y, y.z, y.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 a = unpack2<T>(xs[k]), c = unpack2<T>(ys[k]);
      s += a.x * c.x + a.y * c.y;
    }
  }
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
  if (piece == 0 && row < rows) {
    const int64_t bt = row / H, h = row % H, b = bt / T_, i = bt % T_;
    delta[(b * H + h) * T_ + i] = s;
  }
}

// dK and dV for 64 keys of kv head g: warp w owns keys n0 + 16w .. + 15 and sums over the
// group's query heads (in order) and, for each, the query tiles from the one holding n0 to the
// last, kDkvQueries<D> rows a step, double-buffered. Per step and warp, in the transposed
// orientation so that the warp's rows are its keys:
//   Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ (16 × step), Pᵀ = exp2(Sᵀ·log2e/√D − lse·log2e), dSᵀ = Pᵀ ∘ (dPᵀ − delta),
//   dV += Pᵀ·dO, dK += dSᵀ·Q (16 × D), and dK is scaled by 1/√D once at the end.
// grid (ceil(T / 64), B·KV), block 128, dynamic shared memory dkv_smem_bytes<T, D>().
template <typename T, int D>
__global__ void __launch_bounds__(32 * kBackwardWarps)
    flash_attention_dkv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta, Layout L,
                               float scale, float scale_log2) {
  constexpr int S = padded(D), kN = kDkvKeys, kM = kDkvQueries<D>, kThreads = 32 * kBackwardWarps;
  extern __shared__ __align__(16) unsigned char smem[];
  T* k_tile = reinterpret_cast<T*>(smem);                             // (kN, S)
  T* v_tile = k_tile + kN * S;                                        // (kN, S)
  T* q_tiles = v_tile + kN * S;                                       // 2 × (kM, S): steps alternate buffers
  T* do_tiles = q_tiles + 2 * kM * S;                                 // 2 × (kM, S)
  float* lse_rows = reinterpret_cast<float*>(do_tiles + 2 * kM * S);  // 2 × kM, times log2(e)
  float* delta_rows = lse_rows + 2 * kM;                              // 2 × kM
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int64_t n0 = int64_t(blockIdx.x) * kN;
  const int64_t bg = blockIdx.y, b = bg / L.KV, g = bg % L.KV;
  const int group = int(L.H / L.KV);
  const int64_t HD = L.H * D;
  const T* base = qkv + b * L.T * L.ld;
  const T* dout_base = dout + b * L.T * HD;
  // Query rows i ≥ n0 see these keys: tiles from the one holding row n0 to the last.
  const int m_first = int(n0 / kM), m_end = int((L.T + kM - 1) / kM);

  load_tile<kN, D, kThreads>(k_tile, base + n0 * L.ld + L.k_col(g, D), L.ld, L.T - n0, tid);
  load_tile<kN, D, kThreads>(v_tile, base + n0 * L.ld + L.v_col(g, D), L.ld, L.T - n0, tid);
  // A step is (query head g·group + hq, query tile mt), hq-major: the group's heads in order.
  auto load_step = [&](int hq, int mt, int buf) {
    const int64_t h = g * group + hq, m0 = int64_t(mt) * kM;
    load_tile<kM, D, kThreads>(q_tiles + buf * kM * S, base + m0 * L.ld + L.q_col(h, D), L.ld, L.T - m0, tid);
    load_tile<kM, D, kThreads>(do_tiles + buf * kM * S, dout_base + m0 * HD + h * D, HD, L.T - m0, tid);
    // Plain stores (visible after the barrier that precedes their use). Rows past T get
    // lse = +inf, so their P is exactly 0 and they add nothing to dK or dV.
    for (int r = tid; r < kM; r += kThreads) {
      const int64_t i = m0 + r, at = (b * L.H + h) * L.T + i;
      lse_rows[buf * kM + r] = i < L.T ? lse[at] * kLog2e : INFINITY;
      delta_rows[buf * kM + r] = i < L.T ? delta[at] : 0.0f;
    }
  };
  int hq = 0, mt = m_first, buf = 0;
  load_step(hq, mt, buf);
  cp_async_commit();

  const int row0 = 16 * warp;
  const int64_t key_first = n0 + row0;  // the warp's first key
  const T* k_lane = a_lane_address(k_tile + row0 * S, S, lane);
  const T* v_lane = a_lane_address(v_tile + row0 * S, S, lane);
  float dk[D / 8][4] = {}, dv[D / 8][4] = {};

  while (true) {
    int next_hq = hq, next_mt = mt + 1;
    if (next_mt == m_end) next_mt = m_first, ++next_hq;
    const bool more = next_hq < group;
    if (more) {
      load_step(next_hq, next_mt, 1 - buf);
      cp_async_commit();
      cp_async_wait<1>();  // this step's tiles have landed; the next step's load under its math
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t m0 = int64_t(mt) * kM;
    if (m0 + kM - 1 >= key_first) {  // else every query of the tile precedes all the warp's keys
      const T* q_tile = q_tiles + buf * kM * S;
      const T* do_tile = do_tiles + buf * kM * S;
      const float* lse_b = lse_rows + buf * kM;
      const float* delta_b = delta_rows + buf * kM;
      // st, dpt (16 × kM): element (nt, e) is key key_first + gid + 8(e/2), query m0 + 8nt + 2tig + e%2.
      float st[kM / 8][4] = {}, dpt[kM / 8][4] = {};
      mma_abt<kM, D, S, T>(
          st, [&](int kk, uint32_t(&a)[4]) { ldmatrix_x4(a, k_lane + 16 * kk); }, q_tile, lane);
      mma_abt<kM, D, S, T>(
          dpt, [&](int kk, uint32_t(&a)[4]) { ldmatrix_x4(a, v_lane + 16 * kk); }, do_tile, lane);
      const bool diagonal = m0 < key_first + 15;  // some query of the tile precedes some key
#pragma unroll
      for (int nt = 0; nt < kM / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int q = 8 * nt + 2 * tig + (e % 2);
          float p = exp2f(st[nt][e] * scale_log2 - lse_b[q]);
          if (diagonal && m0 + q < key_first + gid + 8 * (e / 2)) p = 0.0f;
          st[nt][e] = p;
          dpt[nt][e] = p * (dpt[nt][e] - delta_b[q]);
        }
      uint32_t a[kM / 16][4];
      accumulator_to_a<kM, T>(a, st);
      mma_ab<D, kM, S, T>(dv, a, do_tile, lane);
      accumulator_to_a<kM, T>(a, dpt);
      mma_ab<D, kM, S, T>(dk, a, q_tile, lane);
    }
    __syncthreads();  // the next iteration's prefetch overwrites the buffer just read
    if (!more) break;
    hq = next_hq, mt = next_mt, buf = 1 - buf;
  }
  // The warp's K and V rows are read by no other warp: they stage its results.
  T* dst = dqkv + (b * L.T + key_first) * L.ld;
  store_rows<D>(dst + L.k_col(g, D), L.ld, L.T - key_first, k_tile + row0 * S, dk, scale, scale, lane);
  store_rows<D>(dst + L.v_col(g, D), L.ld, L.T - key_first, v_tile + row0 * S, dv, 1.0f, 1.0f, lane);
}

// dQ for 64 query rows of head h: warp w owns rows m0 + 16w .. + 15 and walks the key tiles up to
// its diagonal, 64 keys a step, double-buffered. Per step and warp:
//   S = Q·Kᵀ, dP = dO·Vᵀ (16 × 64), P = exp2(S·log2e/√D − lse·log2e), dS = P ∘ (dP − delta),
//   dQ += dS·K (16 × D), scaled by 1/√D once at the end.
// grid (ceil(T / 64), B·H), block 128, dynamic shared memory dq_smem_bytes<T, D>(); query tiles
// from the last down, as in the forward.
template <typename T, int D>
__global__ void __launch_bounds__(32 * kBackwardWarps)
    flash_attention_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta, Layout L,
                              float scale, float scale_log2) {
  constexpr int S = padded(D), kM = kDqRows, kN = kDqKeys<D>, kThreads = 32 * kBackwardWarps;
  extern __shared__ __align__(16) unsigned char smem[];
  T* q_tile = reinterpret_cast<T*>(smem);  // (kM, S)
  T* do_tile = q_tile + kM * S;            // (kM, S)
  T* k_tiles = do_tile + kM * S;           // 2 × (kN, S): tile j in buffer j % 2
  T* v_tiles = k_tiles + 2 * kN * S;       // 2 × (kN, S)
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int64_t m0 = int64_t(gridDim.x - 1 - blockIdx.x) * kM;
  const int64_t bh = blockIdx.y, b = bh / L.H, h = bh % L.H, g = h / (L.H / L.KV);
  const int64_t HD = L.H * D;
  const T* base = qkv + b * L.T * L.ld;
  const T* k_src = base + L.k_col(g, D);
  const T* v_src = base + L.v_col(g, D);
  const int n_tiles = int((min(L.T, m0 + kM) + kN - 1) / kN);

  load_tile<kM, D, kThreads>(q_tile, base + m0 * L.ld + L.q_col(h, D), L.ld, L.T - m0, tid);
  load_tile<kM, D, kThreads>(do_tile, dout + (b * L.T + m0) * HD + h * D, HD, L.T - m0, tid);
  load_tile<kN, D, kThreads>(k_tiles, k_src, L.ld, L.T, tid);
  load_tile<kN, D, kThreads>(v_tiles, v_src, L.ld, L.T, tid);
  cp_async_commit();

  const int row0 = 16 * warp;
  const int64_t row_first = m0 + row0;
  // The thread's rows gid and gid + 8: lse in log2 units and delta (rows past T: P = 0).
  float lse2[2], row_delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = row_first + gid + 8 * r;
    lse2[r] = i < L.T ? lse[bh * L.T + i] * kLog2e : INFINITY;
    row_delta[r] = i < L.T ? delta[bh * L.T + i] : 0.0f;
  }
  const T* q_lane = a_lane_address(q_tile + row0 * S, S, lane);
  const T* do_lane = a_lane_address(do_tile + row0 * S, S, lane);
  float dq[D / 8][4] = {};

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {
      const int64_t next = int64_t(j + 1) * kN;
      const int buf = (j + 1) % 2;
      load_tile<kN, D, kThreads>(k_tiles + buf * kN * S, k_src + next * L.ld, L.ld, L.T - next, tid);
      load_tile<kN, D, kThreads>(v_tiles + buf * kN * S, v_src + next * L.ld, L.ld, L.T - next, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t n0 = int64_t(j) * kN;
    if (n0 <= row_first + 15) {
      const T* k_tile = k_tiles + (j % 2) * kN * S;
      const T* v_tile = v_tiles + (j % 2) * kN * S;
      // s, dp (16 × kN): element (nt, e) is row row_first + gid + 8(e/2), key n0 + 8nt + 2tig + e%2.
      float s[kN / 8][4] = {}, dp[kN / 8][4] = {};
      mma_abt<kN, D, S, T>(
          s, [&](int kk, uint32_t(&a)[4]) { ldmatrix_x4(a, q_lane + 16 * kk); }, k_tile, lane);
      mma_abt<kN, D, S, T>(
          dp, [&](int kk, uint32_t(&a)[4]) { ldmatrix_x4(a, do_lane + 16 * kk); }, v_tile, lane);
      const bool diagonal = n0 + kN - 1 > row_first;
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e / 2;
          float p = exp2f(s[nt][e] * scale_log2 - lse2[r]);
          if (diagonal && n0 + 8 * nt + 2 * tig + (e % 2) > row_first + gid + 8 * r) p = 0.0f;
          s[nt][e] = p * (dp[nt][e] - row_delta[r]);  // dS
        }
      uint32_t a[kN / 16][4];
      accumulator_to_a<kN, T>(a, s);
      mma_ab<D, kN, S, T>(dq, a, k_tile, lane);
    }
    __syncthreads();
  }
  // The warp's Q rows are read by no other warp: they stage its result.
  store_rows<D>(dqkv + (b * L.T + row_first) * L.ld + L.q_col(h, D), L.ld, L.T - row_first, q_tile + row0 * S, dq,
                scale, scale, lane);
}

template <typename T, int D>
constexpr size_t forward_smem_bytes() {
  return size_t(kForwardRows + 4 * kForwardKeys) * padded(D) * sizeof(T);
}
template <typename T, int D>
constexpr size_t dkv_smem_bytes() {
  return size_t(2 * kDkvKeys + 4 * kDkvQueries<D>) * padded(D) * sizeof(T) + 4 * kDkvQueries<D> * sizeof(float);
}
template <typename T, int D>
constexpr size_t dq_smem_bytes() {
  return size_t(2 * kDqRows + 4 * kDqKeys<D>) * padded(D) * sizeof(T);
}

// Above 48 KiB a kernel must opt in to its dynamic shared memory. Set on every launch: it is a
// host-side attribute write, and doing it here keeps it right on whichever device is current.
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  TESSEL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

Layout make_layout(const char* what, int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D) {
  TESSEL_CHECK(flash_attention_supported(D))
      << what << ": head dim " << D << " has no tensor-core kernel (built for 64 and 128); hint: run the "
      << "reference kernel (DeviceContext::set_attention_kernel(AttentionKernel::kReference))";
  TESSEL_CHECK(KV >= 1 && H % KV == 0) << what << ": " << H << " heads do not divide into " << KV << " kv heads";
  TESSEL_CHECK(T_ >= 0 && T_ / kDqRows < (int64_t(1) << 31))
      << what << ": sequence length " << T_ << " is beyond the grid's x dimension";
  TESSEL_CHECK(B * H <= 65535) << what << ": batch x heads = " << B * H
                               << " is above the 65535 the kernels' grid allows; hint: lower batch.micro";
  return Layout{T_, H, KV, (H + 2 * KV) * D};
}

void check_aligned(const char* what, const char* name, const void* p) {
  TESSEL_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0)
      << what << ": " << name << " is not 16-byte aligned (the kernels move 16 bytes at a time); hint: "
      << "pass the start of an allocation or an offset that is a multiple of 8 elements";
}

template <typename T, int D>
void forward_for(T* out, float* lse, const T* qkv, int64_t B, const Layout& L, cudaStream_t stream) {
  constexpr size_t bytes = forward_smem_bytes<T, D>();
  allow_smem(flash_attention_forward_kernel<T, D>, bytes);
  const float scale_log2 = kLog2e * (1.0f / sqrtf(float(D)));  // as the backward has it, bit for bit
  const dim3 grid(unsigned(ceil_div(L.T, kForwardRows)), unsigned(B * L.H));
  flash_attention_forward_kernel<T, D><<<grid, 32 * kForwardWarps, bytes, stream>>>(out, lse, qkv, L, scale_log2);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T, int D>
void backward_for(T* dqkv, float* delta, const T* dout, const T* qkv, const T* out, const float* lse, int64_t B,
                  const Layout& L, cudaStream_t stream) {
  const float scale = 1.0f / sqrtf(float(D)), scale_log2 = kLog2e * scale;
  const int64_t rows = B * L.T * L.H;
  const int64_t rows_per_block = kDeltaThreads / (D / 8);
  flash_attention_delta_kernel<T, D>
      <<<unsigned(ceil_div(rows, rows_per_block)), kDeltaThreads, 0, stream>>>(delta, dout, out, rows, L.T, L.H);
  TESSEL_CUDA_LAUNCH_CHECK();

  constexpr size_t dq_bytes = dq_smem_bytes<T, D>();
  allow_smem(flash_attention_dq_kernel<T, D>, dq_bytes);
  const dim3 q_grid(unsigned(ceil_div(L.T, kDqRows)), unsigned(B * L.H));
  flash_attention_dq_kernel<T, D>
      <<<q_grid, 32 * kBackwardWarps, dq_bytes, stream>>>(dqkv, dout, qkv, lse, delta, L, scale, scale_log2);
  TESSEL_CUDA_LAUNCH_CHECK();

  constexpr size_t dkv_bytes = dkv_smem_bytes<T, D>();
  allow_smem(flash_attention_dkv_kernel<T, D>, dkv_bytes);
  const dim3 kv_grid(unsigned(ceil_div(L.T, kDkvKeys)), unsigned(B * L.KV));
  flash_attention_dkv_kernel<T, D>
      <<<kv_grid, 32 * kBackwardWarps, dkv_bytes, stream>>>(dqkv, dout, qkv, lse, delta, L, scale, scale_log2);
  TESSEL_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool flash_attention_supported(int64_t D) { return D == 64 || D == 128; }

template <typename T>
void flash_attention_forward(T* out, float* lse, const T* qkv, int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D,
                             cudaStream_t stream) {
  constexpr const char* what = "flash attention forward (CUDA)";
  const Layout L = make_layout(what, B, T_, H, KV, D);
  if (B * T_ == 0) return;
  check_aligned(what, "qkv", qkv);
  check_aligned(what, "out", out);
  if (D == 64)
    forward_for<T, 64>(out, lse, qkv, B, L, stream);
  else
    forward_for<T, 128>(out, lse, qkv, B, L, stream);
}

template <typename T>
void flash_attention_backward(T* dqkv, float* delta, const T* dout, const T* qkv, const T* out, const float* lse,
                              int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D, cudaStream_t stream) {
  constexpr const char* what = "flash attention backward (CUDA)";
  const Layout L = make_layout(what, B, T_, H, KV, D);
  if (B * T_ == 0) return;
  check_aligned(what, "dqkv", dqkv);
  check_aligned(what, "dout", dout);
  check_aligned(what, "qkv", qkv);
  check_aligned(what, "out", out);
  if (D == 64)
    backward_for<T, 64>(dqkv, delta, dout, qkv, out, lse, B, L, stream);
  else
    backward_for<T, 128>(dqkv, delta, dout, qkv, out, lse, B, L, stream);
}

// Tensor cores take 16-bit inputs: no fp32 instantiation (fp32 runs the reference kernel).
#define INSTANTIATE(T)                                                                                                \
  template void flash_attention_forward<T>(T*, float*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,         \
                                           cudaStream_t);                                                             \
  template void flash_attention_backward<T>(T*, float*, const T*, const T*, const T*, const float*, int64_t, int64_t, \
                                            int64_t, int64_t, int64_t, cudaStream_t);
INSTANTIATE(__nv_bfloat16)
INSTANTIATE(__half)
#undef INSTANTIATE

}  // namespace cuda
}  // namespace tessel

// Device helpers shared by the CUDA kernels of this folder: conversions between the storage
// types (float, bf16, fp16) and fp32, warp and block reductions, 16-byte vector accesses, the
// launch of row kernels that hold a row in registers, launch arithmetic.
// Kernels store activations and weights in T and accumulate in fp32; parameter gradients and
// saved statistics are fp32 whatever T is.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/kernels/cuda/cuda_check.h"

namespace tessel {
namespace cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Reduces v over the block (blockDim.x a multiple of 32, at most 1024) with warp_op, `empty` for
// the lanes past the last warp; every thread gets the result. `scratch` holds 32 floats of
// shared memory; the function synchronizes before reusing it.
template <typename WarpOp>
__device__ __forceinline__ float block_reduce(float v, float* scratch, WarpOp warp_op, float empty) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_op(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : empty;
  return warp_op(v);
}

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  return block_reduce(
      v, scratch, [](float x) { return warp_sum(x); }, 0.0f);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  return block_reduce(
      v, scratch, [](float x) { return warp_max(x); }, -INFINITY);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- Vector accesses. Pack<T, kWidth> is kWidth values of T loaded or stored by one
// instruction: kPackWidth<T> of them fill 16 bytes (ld.global.v4 / st.global.v4), which cuts the
// memory instructions of a bandwidth-bound kernel 4x (fp32) or 8x (bf16, fp16); kWidth = 1 is the
// scalar fallback of the same code, for lengths or pointers that do not allow the wide access.
template <typename T, int kWidth>
struct alignas(sizeof(T) * kWidth) Pack {
  T v[kWidth];
};

template <typename T>
constexpr int kPackWidth = 16 / static_cast<int>(sizeof(T));

// Whether p may be read with 16-byte accesses.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The built-in type of a pack's bytes. Accesses go through it, and stores through __stwb (an
// ordinary write-back st.global), so that they stay one instruction: the compiler splits a
// plain 16-byte store of eight converted bf16 into 4-byte ones.
template <int kBytes>
struct PackWord;
template <>
struct PackWord<2> {
  using type = unsigned short;
};
template <>
struct PackWord<4> {
  using type = unsigned int;
};
template <>
struct PackWord<16> {
  using type = uint4;
};

template <int kWidth, typename T>
__device__ __forceinline__ Pack<T, kWidth> load_pack(const T* p) {
  using Word = typename PackWord<sizeof(Pack<T, kWidth>)>::type;
  const Word w = *reinterpret_cast<const Word*>(p);
  Pack<T, kWidth> v;
  memcpy(&v, &w, sizeof(v));
  return v;
}

template <int kWidth, typename T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, kWidth>& v) {
  using Word = typename PackWord<sizeof(Pack<T, kWidth>)>::type;
  Word w;
  memcpy(&w, &v, sizeof(w));
  __stwb(reinterpret_cast<Word*>(p), w);
}

// ---- Row kernels that hold their row in registers (the norms): blockDim.x threads share a row,
// each holding up to `vecs` accesses of it (access j of the row belongs to thread j % blockDim.x),
// so the row is read from global memory once. A row of up to 32·vecs accesses takes one warp and
// a block carries kWarpRows such rows (blockDim.y = kWarpRows: warps reduce with shuffles, no
// barrier); a longer row takes a whole block of 64..kMaxRowThreads threads (blockDim.y = 1,
// reduced with block_sum). Row kernels declare __launch_bounds__(kMaxRowThreads), which lets
// them keep up to 255 registers per thread and still launch. A thread holds kRowVecs 16-byte
// accesses (bf16 rows up to 256·4·8 = 8192 wide, fp32 up to 4096) or kRowScalarVecs scalar ones
// (rows up to 2048); longer rows are left to block-per-row kernels that re-read the row.
constexpr int kWarpRows = 4;
constexpr int kMaxRowThreads = 256;
constexpr int kRowVecs = 4;
constexpr int kRowScalarVecs = 8;

struct RowLaunch {
  dim3 grid, block;
};

// The launch for N rows of `accesses` accesses with at most `vecs` per thread; false when a row
// is longer than kMaxRowThreads threads can hold.
inline bool row_launch(int64_t N, int64_t accesses, int vecs, RowLaunch* launch) {
  int64_t threads = 32;
  while (threads * vecs < accesses && threads < kMaxRowThreads) threads *= 2;
  if (threads * vecs < accesses) return false;
  const int64_t rows = threads == 32 ? kWarpRows : 1;
  launch->block = dim3(static_cast<unsigned>(threads), static_cast<unsigned>(rows));
  launch->grid = dim3(static_cast<unsigned>(ceil_div(N, rows)));
  return true;
}

// Calls launch(width, vecs, row_launch) for the row kernel that holds N rows of C values of T:
// width (a std::integral_constant) kPackWidth<T> when `aligned` (every row pointer the kernel
// reads or writes is 16-byte aligned) and C is a multiple of it, else 1 (scalar accesses).
// False, launching nothing, when no row kernel holds the row.
template <typename T, typename Launch>
bool launch_row_kernel(int64_t N, int64_t C, bool aligned, Launch&& launch) {
  constexpr int W = kPackWidth<T>;
  RowLaunch l;
  if (aligned && C % W == 0 && row_launch(N, C / W, kRowVecs, &l)) {
    launch(std::integral_constant<int, W>(), std::integral_constant<int, kRowVecs>(), l);
    return true;
  }
  if (row_launch(N, C, kRowScalarVecs, &l)) {
    launch(std::integral_constant<int, 1>(), std::integral_constant<int, kRowScalarVecs>(), l);
    return true;
  }
  return false;
}

// Access i of this thread in its row: the row's access threadIdx.x + i·blockDim.x.
__device__ __forceinline__ int64_t row_access(int i) { return threadIdx.x + int64_t(i) * blockDim.x; }

// Sum over the threads of a row kernel's row (see row_launch); every thread of the row gets it.
// With blockDim.x > 32 the row is the block: all its threads must call this.
__device__ __forceinline__ float row_sum(float v, float* scratch) {
  return blockDim.x == 32 ? warp_sum(v) : block_sum(v, scratch);
}

// Grid size for a grid-stride loop over n elements: enough blocks to fill the device, never
// more than the elements need.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = ceil_div(n, threads);
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace cuda
}  // namespace tessel

// Explicit instantiation of a launcher for every storage type:
//   #define INSTANTIATE(T) template void relu_forward<T>(T*, const T*, int64_t, cudaStream_t);
//   TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)
#define TESSEL_FOR_STORAGE_TYPES(MACRO) MACRO(float) MACRO(__nv_bfloat16) MACRO(__half)

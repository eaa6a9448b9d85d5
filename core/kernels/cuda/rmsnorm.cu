// RMSNorm on CUDA (LLaMA). Forward and the input gradient hold their row in registers (a warp
// per row, or a block for longer rows: cuda_common.cuh's launch_row_kernel), reading it from
// global memory once, 16 bytes per access where C and the pointers allow. Rows too long for a
// block's registers (bf16 beyond 8192 channels, fp32 beyond 4096, or beyond 2048 on the scalar
// path) take the block-per-row kernels that read the row in each pass. The weight gradient is a
// deterministic two-stage column sum (column_sum.cuh).
#include "core/kernels/cuda/column_sum.cuh"
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // the long-row kernels
template <typename T, int kWidth, int kHeld>
__global__ void __launch_bounds__(kMaxRowThreads)
    rmsnorm_forward_kernel(T* out, float* rstd, const T* inp, const T* weight, int64_t N, int64_t C, float eps) {
  __shared__ float scratch[32];
  const int64_t r = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  if (r >= N) return;  // a whole warp (blockDim.x = 32), or never (one row per block)
  const int64_t accesses = C / kWidth;
  const T* x = inp + r * C;
  // Every load is issued before the sum is reduced (and before any store).
  Pack<T, kWidth> xv[kHeld], wv[kHeld];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
      xv[i] = load_pack<kWidth>(x + j * kWidth);
      wv[i] = load_pack<kWidth>(weight + j * kWidth);
#pragma unroll
      for (int k = 0; k < kWidth; ++k) ss += to_float(xv[i].v[k]) * to_float(xv[i].v[k]);
    }
  }
  const float s = rsqrtf(row_sum(ss, scratch) / float(C) + eps);
  T* o = out + r * C;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
      Pack<T, kWidth> y;
#pragma unroll
      for (int k = 0; k < kWidth; ++k) y.v[k] = from_float<T>(to_float(xv[i].v[k]) * s * to_float(wv[i].v[k]));
      store_pack<kWidth>(o + j * kWidth, y);
    }
  }
  if (threadIdx.x == 0) rstd[r] = s;
}

// With g = w·dout: dx = s·g − x·s³·mean(g·x), added into dinp.
template <typename T, int kWidth, int kHeld>
__global__ void __launch_bounds__(kMaxRowThreads)
    rmsnorm_backward_input_kernel(T* dinp, const T* dout, const T* inp, const T* weight, const float* rstd, int64_t N,
                                  int64_t C) {
  __shared__ float scratch[32];
  const int64_t r = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  if (r >= N) return;  // as in the forward
  const int64_t accesses = C / kWidth;
  const T* x = inp + r * C;
  const T* dy = dout + r * C;
  T* d = dinp + r * C;
  const float s = rstd[r];
  // Every load, dinp's included, is issued before the sum is reduced (and before any store).
  Pack<T, kWidth> xv[kHeld], gv[kHeld], wv[kHeld], dv[kHeld];
  float gx = 0.0f;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
      xv[i] = load_pack<kWidth>(x + j * kWidth);
      gv[i] = load_pack<kWidth>(dy + j * kWidth);
      wv[i] = load_pack<kWidth>(weight + j * kWidth);
      dv[i] = load_pack<kWidth>(d + j * kWidth);
#pragma unroll
      for (int k = 0; k < kWidth; ++k) gx += to_float(wv[i].v[k]) * to_float(gv[i].v[k]) * to_float(xv[i].v[k]);
    }
  }
  const float k3 = s * s * s * row_sum(gx, scratch) / float(C);
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
#pragma unroll
      for (int k = 0; k < kWidth; ++k) {
        const float dx = s * to_float(wv[i].v[k]) * to_float(gv[i].v[k]) - k3 * to_float(xv[i].v[k]);
        dv[i].v[k] = from_float<T>(to_float(dv[i].v[k]) + dx);  // adds: dinp holds the residual's pass-through
      }
      store_pack<kWidth>(d + j * kWidth, dv[i]);
    }
  }
}

// Rows longer than a row kernel's block holds: one block per row, reading the row in each pass.
template <typename T>
__global__ void rmsnorm_forward_long_row_kernel(T* out, float* rstd, const T* inp, const T* weight, int64_t C,
                                                float eps) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* x = inp + r * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += to_float(x[c]) * to_float(x[c]);
  const float s = rsqrtf(block_sum(ss, scratch) / float(C) + eps);
  T* o = out + r * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = from_float<T>(to_float(x[c]) * s * to_float(weight[c]));
  if (threadIdx.x == 0) rstd[r] = s;
}

template <typename T>
__global__ void rmsnorm_backward_input_long_row_kernel(T* dinp, const T* dout, const T* inp, const T* weight,
                                                       const float* rstd, int64_t C) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* x = inp + r * C;
  const T* dy = dout + r * C;
  const float s = rstd[r];
  float gx = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) gx += to_float(weight[c]) * to_float(dy[c]) * to_float(x[c]);
  const float k = s * s * s * block_sum(gx, scratch) / float(C);
  T* d = dinp + r * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    d[c] = from_float<T>(to_float(d[c]) + s * to_float(weight[c]) * to_float(dy[c]) - k * to_float(x[c]));
}

// Row r's term for channel c: dweight += dout · x · rstd.
template <typename T>
struct RmsNormWeightTerm {
  static constexpr int kOutputs = 1;
  const T* dout;
  const T* inp;
  const float* rstd;
  int64_t C;
  __device__ void operator()(int64_t r, int64_t c, float (&v)[1]) const {
    v[0] = to_float(dout[r * C + c]) * to_float(inp[r * C + c]) * rstd[r];
  }
};

}  // namespace

template <typename T>
void rmsnorm_forward(T* out, float* rstd, const T* inp, const T* weight, int64_t N, int64_t C, float eps,
                     cudaStream_t stream) {
  if (N == 0) return;
  const bool aligned = aligned16(out) && aligned16(inp) && aligned16(weight);
  const bool held = launch_row_kernel<T>(N, C, aligned, [&](auto width, auto vecs, const RowLaunch& l) {
    rmsnorm_forward_kernel<T, decltype(width)::value, decltype(vecs)::value>
        <<<l.grid, l.block, 0, stream>>>(out, rstd, inp, weight, N, C, eps);
  });
  if (!held) rmsnorm_forward_long_row_kernel<<<N, kThreads, 0, stream>>>(out, rstd, inp, weight, C, eps);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void rmsnorm_backward(T* dinp, float* dweight, const T* dout, const T* inp, const T* weight, const float* rstd,
                      int64_t N, int64_t C, float* scratch, int64_t scratch_floats, cudaStream_t stream) {
  if (N == 0) return;
  const bool aligned = aligned16(dinp) && aligned16(dout) && aligned16(inp) && aligned16(weight);
  const bool held = launch_row_kernel<T>(N, C, aligned, [&](auto width, auto vecs, const RowLaunch& l) {
    rmsnorm_backward_input_kernel<T, decltype(width)::value, decltype(vecs)::value>
        <<<l.grid, l.block, 0, stream>>>(dinp, dout, inp, weight, rstd, N, C);
  });
  if (!held) rmsnorm_backward_input_long_row_kernel<<<N, kThreads, 0, stream>>>(dinp, dout, inp, weight, rstd, C);
  TESSEL_CUDA_LAUNCH_CHECK();
  column_sums(ColumnOutputs<1>{{dweight}}, scratch, scratch_floats, N, C, RmsNormWeightTerm<T>{dout, inp, rstd, C},
              stream, "rmsnorm_backward");
}

#define INSTANTIATE(T)                                                                                                \
  template void rmsnorm_forward<T>(T*, float*, const T*, const T*, int64_t, int64_t, float, cudaStream_t);            \
  template void rmsnorm_backward<T>(T*, float*, const T*, const T*, const T*, const float*, int64_t, int64_t, float*, \
                                    int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

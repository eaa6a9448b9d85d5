// LayerNorm on CUDA. Forward and the input gradient hold their row in registers (a warp per
// row, or a block for longer rows: cuda_common.cuh's launch_row_kernel), reading it from global
// memory once, 16 bytes per access where C and the pointers allow; statistics in fp32, two
// passes over the registers as the CPU reference does. Rows too long for a block's registers
// (bf16 beyond 8192 channels, fp32 beyond 4096, or beyond 2048 on the scalar path) take the
// block-per-row kernels that read the row in each pass. The weight and bias gradients are
// deterministic two-stage column sums (column_sum.cuh).
#include "core/kernels/cuda/column_sum.cuh"
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // the long-row kernels
template <typename T, int kWidth, int kHeld>
__global__ void __launch_bounds__(kMaxRowThreads)
    layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int64_t N,
                             int64_t C, float eps) {
  __shared__ float scratch[32];
  const int64_t r = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  if (r >= N) return;  // a whole warp (blockDim.x = 32), or never (one row per block)
  const int64_t accesses = C / kWidth;
  const T* x = inp + r * C;
  // Every load is issued before the statistics are reduced (and before any store).
  Pack<T, kWidth> xv[kHeld], wv[kHeld], bv[kHeld];
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
      xv[i] = load_pack<kWidth>(x + j * kWidth);
      wv[i] = load_pack<kWidth>(weight + j * kWidth);
      bv[i] = load_pack<kWidth>(bias + j * kWidth);
#pragma unroll
      for (int k = 0; k < kWidth; ++k) sum += to_float(xv[i].v[k]);
    }
  }
  const float m = row_sum(sum, scratch) / float(C);
  float var = 0.0f;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    if (row_access(i) < accesses) {
#pragma unroll
      for (int k = 0; k < kWidth; ++k) {
        const float d = to_float(xv[i].v[k]) - m;
        var += d * d;
      }
    }
  }
  const float s = rsqrtf(row_sum(var, scratch) / float(C) + eps);
  T* o = out + r * C;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
      Pack<T, kWidth> y;
#pragma unroll
      for (int k = 0; k < kWidth; ++k)
        y.v[k] = from_float<T>((to_float(xv[i].v[k]) - m) * s * to_float(wv[i].v[k]) + to_float(bv[i].v[k]));
      store_pack<kWidth>(o + j * kWidth, y);
    }
  }
  if (threadIdx.x == 0) {
    mean[r] = m;
    rstd[r] = s;
  }
}

template <typename T, int kWidth, int kHeld>
__global__ void __launch_bounds__(kMaxRowThreads)
    layernorm_backward_input_kernel(T* dinp, const T* dout, const T* inp, const T* weight, const float* mean,
                                    const float* rstd, int64_t N, int64_t C) {
  __shared__ float scratch[32];
  const int64_t r = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  if (r >= N) return;  // as in the forward
  const int64_t accesses = C / kWidth;
  const T* x = inp + r * C;
  const T* g = dout + r * C;
  const float m = mean[r], s = rstd[r];
  T* d = dinp + r * C;
  // Every load, dinp's included, is issued before the sums are reduced (and before any store).
  Pack<T, kWidth> xv[kHeld], gv[kHeld], wv[kHeld], dv[kHeld];
  float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
      xv[i] = load_pack<kWidth>(x + j * kWidth);
      gv[i] = load_pack<kWidth>(g + j * kWidth);
      wv[i] = load_pack<kWidth>(weight + j * kWidth);
      dv[i] = load_pack<kWidth>(d + j * kWidth);
#pragma unroll
      for (int k = 0; k < kWidth; ++k) {
        const float dnorm = to_float(wv[i].v[k]) * to_float(gv[i].v[k]);
        dnorm_sum += dnorm;
        dnorm_norm_sum += dnorm * (to_float(xv[i].v[k]) - m) * s;
      }
    }
  }
  const float dnorm_mean = row_sum(dnorm_sum, scratch) / float(C);
  const float dnorm_norm_mean = row_sum(dnorm_norm_sum, scratch) / float(C);
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int64_t j = row_access(i);
    if (j < accesses) {
#pragma unroll
      for (int k = 0; k < kWidth; ++k) {
        const float norm = (to_float(xv[i].v[k]) - m) * s;
        const float dx = (to_float(wv[i].v[k]) * to_float(gv[i].v[k]) - dnorm_mean - norm * dnorm_norm_mean) * s;
        dv[i].v[k] = from_float<T>(to_float(dv[i].v[k]) + dx);  // adds: dinp holds the residual's pass-through
      }
      store_pack<kWidth>(d + j * kWidth, dv[i]);
    }
  }
}

// Rows longer than a row kernel's block holds: one block per row, reading the row in each pass.
template <typename T>
__global__ void layernorm_forward_long_row_kernel(T* out, float* mean, float* rstd, const T* inp, const T* weight,
                                                  const T* bias, int64_t C, float eps) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* x = inp + r * C;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += to_float(x[c]);
  const float m = block_sum(sum, scratch) / float(C);
  float var = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = to_float(x[c]) - m;
    var += d * d;
  }
  const float s = rsqrtf(block_sum(var, scratch) / float(C) + eps);
  T* o = out + r * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    o[c] = from_float<T>((to_float(x[c]) - m) * s * to_float(weight[c]) + to_float(bias[c]));
  if (threadIdx.x == 0) {
    mean[r] = m;
    rstd[r] = s;
  }
}

template <typename T>
__global__ void layernorm_backward_input_long_row_kernel(T* dinp, const T* dout, const T* inp, const T* weight,
                                                         const float* mean, const float* rstd, int64_t C) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* x = inp + r * C;
  const T* g = dout + r * C;
  const float m = mean[r], s = rstd[r];
  float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float dnorm = to_float(weight[c]) * to_float(g[c]);
    dnorm_sum += dnorm;
    dnorm_norm_sum += dnorm * (to_float(x[c]) - m) * s;
  }
  const float dnorm_mean = block_sum(dnorm_sum, scratch) / float(C);
  const float dnorm_norm_mean = block_sum(dnorm_norm_sum, scratch) / float(C);
  T* d = dinp + r * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float norm = (to_float(x[c]) - m) * s;
    const float dx = (to_float(weight[c]) * to_float(g[c]) - dnorm_mean - norm * dnorm_norm_mean) * s;
    d[c] = from_float<T>(to_float(d[c]) + dx);
  }
}

// Row r's terms for channel c: dweight += norm · dout, dbias += dout.
template <typename T>
struct LayerNormParamTerms {
  static constexpr int kOutputs = 2;
  const T* dout;
  const T* inp;
  const float* mean;
  const float* rstd;
  int64_t C;
  __device__ void operator()(int64_t r, int64_t c, float (&v)[2]) const {
    const float g = to_float(dout[r * C + c]);
    v[0] = (to_float(inp[r * C + c]) - mean[r]) * rstd[r] * g;
    v[1] = g;
  }
};

}  // namespace

template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int64_t N,
                       int64_t C, float eps, cudaStream_t stream) {
  if (N == 0) return;
  const bool aligned = aligned16(out) && aligned16(inp) && aligned16(weight) && aligned16(bias);
  const bool held = launch_row_kernel<T>(N, C, aligned, [&](auto width, auto vecs, const RowLaunch& l) {
    layernorm_forward_kernel<T, decltype(width)::value, decltype(vecs)::value>
        <<<l.grid, l.block, 0, stream>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
  });
  if (!held) layernorm_forward_long_row_kernel<<<N, kThreads, 0, stream>>>(out, mean, rstd, inp, weight, bias, C, eps);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight,
                        const float* mean, const float* rstd, int64_t N, int64_t C, float* scratch,
                        int64_t scratch_floats, cudaStream_t stream) {
  if (N == 0) return;
  const bool aligned = aligned16(dinp) && aligned16(dout) && aligned16(inp) && aligned16(weight);
  const bool held = launch_row_kernel<T>(N, C, aligned, [&](auto width, auto vecs, const RowLaunch& l) {
    layernorm_backward_input_kernel<T, decltype(width)::value, decltype(vecs)::value>
        <<<l.grid, l.block, 0, stream>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  });
  if (!held)
    layernorm_backward_input_long_row_kernel<<<N, kThreads, 0, stream>>>(dinp, dout, inp, weight, mean, rstd, C);
  TESSEL_CUDA_LAUNCH_CHECK();
  column_sums(ColumnOutputs<2>{{dweight, dbias}}, scratch, scratch_floats, N, C,
              LayerNormParamTerms<T>{dout, inp, mean, rstd, C}, stream, "layernorm_backward");
}

#define INSTANTIATE(T)                                                                                              \
  template void layernorm_forward<T>(T*, float*, float*, const T*, const T*, const T*, int64_t, int64_t, float,     \
                                     cudaStream_t);                                                                 \
  template void layernorm_backward<T>(T*, float*, float*, const T*, const T*, const T*, const float*, const float*, \
                                      int64_t, int64_t, float*, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

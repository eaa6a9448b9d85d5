// LayerNorm on CUDA: one block per row for the forward and the input gradient (statistics in
// fp32, two passes over the row as the CPU reference does); the weight and bias gradients are
// column sums, one thread per channel over the rows in order (deterministic, no atomics).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* inp, const T* weight,
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
__global__ void layernorm_backward_input_kernel(T* dinp, const T* dout, const T* inp, const T* weight,
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
    d[c] = from_float<T>(to_float(d[c]) + dx);  // adds: dinp holds the residual's pass-through
  }
}

template <typename T>
__global__ void layernorm_backward_params_kernel(float* dweight, float* dbias, const T* dout, const T* inp,
                                                 const float* mean, const float* rstd, int64_t N, int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float dw = 0.0f, db = 0.0f;
  for (int64_t r = 0; r < N; ++r) {
    const float g = to_float(dout[r * C + c]);
    dw += (to_float(inp[r * C + c]) - mean[r]) * rstd[r] * g;
    db += g;
  }
  dweight[c] += dw;
  if (dbias != nullptr) dbias[c] += db;
}

}  // namespace

template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int64_t N,
                       int64_t C, float eps, cudaStream_t stream) {
  if (N == 0) return;
  layernorm_forward_kernel<<<N, kThreads, 0, stream>>>(out, mean, rstd, inp, weight, bias, C, eps);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight,
                        const float* mean, const float* rstd, int64_t N, int64_t C, cudaStream_t stream) {
  if (N == 0) return;
  layernorm_backward_input_kernel<<<N, kThreads, 0, stream>>>(dinp, dout, inp, weight, mean, rstd, C);
  TESSEL_CUDA_LAUNCH_CHECK();
  layernorm_backward_params_kernel<<<ceil_div(C, 128), 128, 0, stream>>>(dweight, dbias, dout, inp, mean, rstd, N, C);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T)                                                                                    \
  template void layernorm_forward<T>(T*, float*, float*, const T*, const T*, const T*, int64_t, int64_t, \
                                     float, cudaStream_t);                                               \
  template void layernorm_backward<T>(T*, float*, float*, const T*, const T*, const T*, const float*,    \
                                      const float*, int64_t, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

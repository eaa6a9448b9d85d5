// RMSNorm on CUDA (LLaMA): one block per row for the forward and the input gradient, the
// weight gradient as column sums over the rows in order (deterministic, no atomics).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void rmsnorm_forward_kernel(T* out, float* rstd, const T* inp, const T* weight, int64_t C, float eps) {
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

// With g = w·dout: dx = s·g − x·s³·mean(g·x), added into dinp.
template <typename T>
__global__ void rmsnorm_backward_input_kernel(T* dinp, const T* dout, const T* inp, const T* weight,
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

template <typename T>
__global__ void rmsnorm_backward_weight_kernel(float* dweight, const T* dout, const T* inp, const float* rstd,
                                               int64_t N, int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float dw = 0.0f;
  for (int64_t r = 0; r < N; ++r) dw += to_float(dout[r * C + c]) * to_float(inp[r * C + c]) * rstd[r];
  dweight[c] += dw;
}

}  // namespace

template <typename T>
void rmsnorm_forward(T* out, float* rstd, const T* inp, const T* weight, int64_t N, int64_t C, float eps,
                     cudaStream_t stream) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<N, kThreads, 0, stream>>>(out, rstd, inp, weight, C, eps);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void rmsnorm_backward(T* dinp, float* dweight, const T* dout, const T* inp, const T* weight, const float* rstd,
                      int64_t N, int64_t C, cudaStream_t stream) {
  if (N == 0) return;
  rmsnorm_backward_input_kernel<<<N, kThreads, 0, stream>>>(dinp, dout, inp, weight, rstd, C);
  TESSEL_CUDA_LAUNCH_CHECK();
  rmsnorm_backward_weight_kernel<<<ceil_div(C, 128), 128, 0, stream>>>(dweight, dout, inp, rstd, N, C);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T)                                                                                           \
  template void rmsnorm_forward<T>(T*, float*, const T*, const T*, int64_t, int64_t, float, cudaStream_t);     \
  template void rmsnorm_backward<T>(T*, float*, const T*, const T*, const T*, const float*, int64_t, int64_t, \
                                    cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

// Elementwise activations on CUDA: tanh-GELU (GPT-2) and SwiGLU (LLaMA), fp32 arithmetic on
// any storage type, in grid-stride loops. GELU moves 16 bytes per access (8 bf16 or 4 fp32)
// when its pointers are 16-byte aligned, the last n % 8 (or 4) elements one by one; SwiGLU one
// element per thread.
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluCube = 0.044715f;
constexpr int kThreads = 256;

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ float gelu(float x) {
  return 0.5f * x * (1.0f + tanhf(kGeluScale * (x + kGeluCube * x * x * x)));
}

__device__ __forceinline__ float gelu_grad(float x) {
  const float t = tanhf(kGeluScale * (x + kGeluCube * x * x * x));
  const float dt = (1.0f - t * t) * kGeluScale * (1.0f + 3.0f * kGeluCube * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * dt;
}

// Packs of kWidth elements (n / kWidth of them), then the n % kWidth left one by one.
template <typename T, int kWidth>
__global__ void gelu_forward_kernel(T* out, const T* inp, int64_t n) {
  const int64_t packs = n / kWidth;
  GRID_STRIDE(i, packs) {
    const Pack<T, kWidth> x = load_pack<kWidth>(inp + i * kWidth);
    Pack<T, kWidth> y;
#pragma unroll
    for (int k = 0; k < kWidth; ++k) y.v[k] = from_float<T>(gelu(to_float(x.v[k])));
    store_pack<kWidth>(out + i * kWidth, y);
  }
  GRID_STRIDE(t, n - packs * kWidth) {
    const int64_t i = packs * kWidth + t;
    out[i] = from_float<T>(gelu(to_float(inp[i])));
  }
}

template <typename T, int kWidth>
__global__ void gelu_backward_kernel(T* dinp, const T* inp, const T* dout, int64_t n) {
  const int64_t packs = n / kWidth;
  GRID_STRIDE(i, packs) {
    const Pack<T, kWidth> x = load_pack<kWidth>(inp + i * kWidth), g = load_pack<kWidth>(dout + i * kWidth);
    Pack<T, kWidth> d;
#pragma unroll
    for (int k = 0; k < kWidth; ++k) d.v[k] = from_float<T>(gelu_grad(to_float(x.v[k])) * to_float(g.v[k]));
    store_pack<kWidth>(dinp + i * kWidth, d);
  }
  GRID_STRIDE(t, n - packs * kWidth) {
    const int64_t i = packs * kWidth + t;
    dinp[i] = from_float<T>(gelu_grad(to_float(inp[i])) * to_float(dout[i]));
  }
}

template <typename T>
__global__ void swiglu_forward_kernel(T* out, const T* inp, int64_t N, int64_t F) {
  GRID_STRIDE(i, N * F) {
    const int64_t r = i / F, j = i % F;
    const float g = to_float(inp[r * 2 * F + j]), u = to_float(inp[r * 2 * F + F + j]);
    out[i] = from_float<T>(g / (1.0f + expf(-g)) * u);
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(T* dinp, const T* inp, const T* dout, int64_t N, int64_t F) {
  GRID_STRIDE(i, N * F) {
    const int64_t r = i / F, j = i % F;
    const float g = to_float(inp[r * 2 * F + j]), u = to_float(inp[r * 2 * F + F + j]);
    const float d = to_float(dout[i]);
    const float sig = 1.0f / (1.0f + expf(-g));
    dinp[r * 2 * F + j] = from_float<T>(d * u * sig * (1.0f + g * (1.0f - sig)));
    dinp[r * 2 * F + F + j] = from_float<T>(d * g * sig);
  }
}

#undef GRID_STRIDE

}  // namespace

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  constexpr int W = kPackWidth<T>;
  if (aligned16(out) && aligned16(inp))
    gelu_forward_kernel<T, W><<<grid_for(ceil_div(n, W), kThreads), kThreads, 0, stream>>>(out, inp, n);
  else
    gelu_forward_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream>>>(out, inp, n);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  constexpr int W = kPackWidth<T>;
  if (aligned16(dinp) && aligned16(inp) && aligned16(dout))
    gelu_backward_kernel<T, W><<<grid_for(ceil_div(n, W), kThreads), kThreads, 0, stream>>>(dinp, inp, dout, n);
  else
    gelu_backward_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream>>>(dinp, inp, dout, n);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F, cudaStream_t stream) {
  if (N * F == 0) return;
  swiglu_forward_kernel<<<grid_for(N * F, kThreads), kThreads, 0, stream>>>(out, inp, N, F);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int64_t N, int64_t F, cudaStream_t stream) {
  if (N * F == 0) return;
  swiglu_backward_kernel<<<grid_for(N * F, kThreads), kThreads, 0, stream>>>(dinp, inp, dout, N, F);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T)                                                           \
  template void gelu_forward<T>(T*, const T*, int64_t, cudaStream_t);            \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t, cudaStream_t); \
  template void swiglu_forward<T>(T*, const T*, int64_t, int64_t, cudaStream_t); \
  template void swiglu_backward<T>(T*, const T*, const T*, int64_t, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

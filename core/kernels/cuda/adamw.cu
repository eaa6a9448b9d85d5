// Fused AdamW on CUDA over fp32 master weights, gradients and moments: one pass per element
// updates the weight and both moments, and optionally writes the weight's compute copy (bf16
// or fp16) for the next forward. The expression is the CPU's, term for term
// (core/adamw_scalars.h).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

template <typename T>
__global__ void adamw_kernel(float* param, T* param_copy, const float* grad, float* m, float* v, int64_t n,
                             AdamWScalars k) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i] * k.grad_scale;
    const float mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const float vi = k.beta2 * v[i] + k.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float p = param[i] * k.decay - k.step_size * mi / (sqrtf(vi) * k.inv_sqrt_bc2 + k.eps);
    param[i] = p;
    if (param_copy != nullptr) param_copy[i] = from_float<T>(p);
  }
}

}  // namespace

template <typename T>
void adamw_update(float* param, T* param_copy, const float* grad, float* m, float* v, int64_t n, const AdamWScalars& k,
                  cudaStream_t stream) {
  if (n == 0) return;
  adamw_kernel<<<grid_for(n, 256), 256, 0, stream>>>(param, param_copy, grad, m, v, n, k);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T) \
  template void adamw_update<T>(float*, T*, const float*, float*, float*, int64_t, const AdamWScalars&, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

// Fused AdamW on CUDA over fp32 master weights, gradients and moments: one pass per element
// updates the weight and both moments, and optionally writes the weight's compute copy (bf16
// or fp16) for the next forward. The formula is the CPU's (optim/adamw.h), in fp32.
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

template <typename T>
__global__ void adamw_kernel(float* param, T* param_copy, const float* grad, float* m, float* v, int64_t n,
                             AdamWArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i] * a.grad_scale;
    float p = param[i];
    p -= a.lr * a.weight_decay * p;
    const float mi = a.beta1 * m[i] + (1.0f - a.beta1) * g;
    const float vi = a.beta2 * v[i] + (1.0f - a.beta2) * g * g;
    p -= a.lr * (mi / a.bias_correction1) / (sqrtf(vi / a.bias_correction2) + a.eps);
    m[i] = mi;
    v[i] = vi;
    param[i] = p;
    if (param_copy != nullptr) param_copy[i] = from_float<T>(p);
  }
}

}  // namespace

template <typename T>
void adamw_update(float* param, T* param_copy, const float* grad, float* m, float* v, int64_t n,
                  const AdamWArgs& args, cudaStream_t stream) {
  if (n == 0) return;
  adamw_kernel<<<grid_for(n, 256), 256, 0, stream>>>(param, param_copy, grad, m, v, n, args);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T) \
  template void adamw_update<T>(float*, T*, const float*, float*, float*, int64_t, const AdamWArgs&, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

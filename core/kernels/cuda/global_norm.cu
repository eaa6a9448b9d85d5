// Squared norm and non-finite detection over fp32 buffers on CUDA (gradient clipping, dynamic
// loss scaling). The sum is two-stage with a fixed number of blocks: each block sums a fixed
// strided subset, then one block sums the partials in order, so the result does not depend on
// scheduling (bitwise repeatable).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kBlocks = 512;
constexpr int kThreads = 512;

__global__ void sum_squares_partial_kernel(float* partials, const float* x, int64_t n) {
  __shared__ float scratch[32];
  float sum = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    sum += x[i] * x[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void sum_partials_kernel(float* out, const float* partials, int count) {
  __shared__ float scratch[32];
  float sum = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *out = sum;
}

__global__ void find_nonfinite_kernel(int* flag, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    if (!isfinite(x[i])) *flag = 1;  // every writer writes the same value: no race on the result
}

}  // namespace

int global_norm_partials() { return kBlocks; }

void sum_squares(float* out, float* partials, const float* x, int64_t n, cudaStream_t stream) {
  sum_squares_partial_kernel<<<kBlocks, kThreads, 0, stream>>>(partials, x, n);
  TESSEL_CUDA_LAUNCH_CHECK();
  sum_partials_kernel<<<1, kThreads, 0, stream>>>(out, partials, kBlocks);
  TESSEL_CUDA_LAUNCH_CHECK();
}

void find_nonfinite(int* flag, const float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  find_nonfinite_kernel<<<grid_for(n, 256), 256, 0, stream>>>(flag, x, n);
  TESSEL_CUDA_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace tessel

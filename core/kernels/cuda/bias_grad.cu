// Bias gradient on CUDA: dbias (OC) += column sums of dout, one thread per column over the rows
// in order (deterministic; coalesced because neighbouring threads read neighbouring columns).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

template <typename T>
__global__ void bias_backward_kernel(float* dbias, const T* dout, int64_t ldd, int64_t N, int64_t OC) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= OC) return;
  float sum = 0.0f;
  for (int64_t r = 0; r < N; ++r) sum += to_float(dout[r * ldd + c]);
  dbias[c] += sum;
}

}  // namespace

template <typename T>
void bias_backward(float* dbias, const T* dout, int64_t ldd, int64_t N, int64_t OC, cudaStream_t stream) {
  if (OC == 0) return;
  bias_backward_kernel<<<ceil_div(OC, 128), 128, 0, stream>>>(dbias, dout, ldd, N, OC);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T) template void bias_backward<T>(float*, const T*, int64_t, int64_t, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

// Casts between storage types on CUDA (fp32 master weights to bf16 compute copies, gradients
// back to fp32), round to nearest even, one thread per element.
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

template <typename Src, typename Dst>
__global__ void cast_kernel(Dst* dst, const Src* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<Dst>(to_float(src[i]));
}

}  // namespace

template <typename Src, typename Dst>
void cast(Dst* dst, const Src* src, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  cast_kernel<<<grid_for(n, 256), 256, 0, stream>>>(dst, src, n);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template void cast<float, __nv_bfloat16>(__nv_bfloat16*, const float*, int64_t, cudaStream_t);
template void cast<float, __half>(__half*, const float*, int64_t, cudaStream_t);
template void cast<__nv_bfloat16, float>(float*, const __nv_bfloat16*, int64_t, cudaStream_t);
template void cast<__half, float>(float*, const __half*, int64_t, cudaStream_t);

}  // namespace cuda
}  // namespace tessel

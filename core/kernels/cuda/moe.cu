// Mixture-of-Experts token permutation on CUDA (cpu_kernels.h states the semantics): rows of the
// token-major activations gathered into expert-major order, scattered back with weights, and
// the dots of permuted rows with token rows. The scatter is deterministic and adds rows in the
// CPU's order: each output row's block finds, in order, the permuted rows that belong to it,
// then adds them in fp32.
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kFound = 64;  // permuted rows collected per pass of the scatter's scan

template <typename T>
__global__ void moe_gather_rows_kernel(T* out, const T* inp, const int32_t* rows, const float* scale, int64_t C) {
  const int64_t r = blockIdx.x;
  const T* src = inp + static_cast<int64_t>(rows[r]) * C;
  T* dst = out + r * C;
  const float s = scale ? scale[r] : 1.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = from_float<T>(s * to_float(src[c]));
}

template <typename T>
__global__ void moe_scatter_add_rows_kernel(T* out, const T* inp, const int32_t* rows, const float* scale, int64_t M,
                                            int64_t C) {
  __shared__ int64_t found[kFound];
  __shared__ int count;
  __shared__ int64_t next;
  const int32_t t = static_cast<int32_t>(blockIdx.x);
  T* dst = out + static_cast<int64_t>(t) * C;
  for (int64_t start = 0; start < M;) {
    if (threadIdx.x == 0) {
      int n = 0;
      int64_t r = start;
      for (; r < M && n < kFound; ++r) {
        if (rows[r] == t) found[n++] = r;
      }
      count = n;
      next = r;
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float acc = to_float(dst[c]);
      for (int i = 0; i < count; ++i) {
        const int64_t r = found[i];
        acc += (scale ? scale[r] : 1.0f) * to_float(inp[r * C + c]);
      }
      dst[c] = from_float<T>(acc);
    }
    start = next;
    __syncthreads();
  }
}

template <typename T>
__global__ void moe_row_dots_kernel(float* out, const T* a, const T* b, const int32_t* rows, int64_t C) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* x = a + r * C;
  const T* y = b + static_cast<int64_t>(rows[r]) * C;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += to_float(x[c]) * to_float(y[c]);
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) out[r] = sum;
}

}  // namespace

template <typename T>
void moe_gather_rows(T* out, const T* inp, const int32_t* rows, const float* scale, int64_t M, int64_t C,
                     cudaStream_t stream) {
  if (M == 0 || C == 0) return;
  moe_gather_rows_kernel<<<static_cast<unsigned>(M), kThreads, 0, stream>>>(out, inp, rows, scale, C);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void moe_scatter_add_rows(T* out, const T* inp, const int32_t* rows, const float* scale, int64_t N, int64_t M,
                          int64_t C, cudaStream_t stream) {
  if (N == 0 || M == 0 || C == 0) return;
  moe_scatter_add_rows_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream>>>(out, inp, rows, scale, M, C);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void moe_row_dots(float* out, const T* a, const T* b, const int32_t* rows, int64_t M, int64_t C, cudaStream_t stream) {
  if (M == 0) return;
  moe_row_dots_kernel<<<static_cast<unsigned>(M), kThreads, 0, stream>>>(out, a, b, rows, C);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T)                                                                                          \
  template void moe_gather_rows<T>(T*, const T*, const int32_t*, const float*, int64_t, int64_t, cudaStream_t); \
  template void moe_scatter_add_rows<T>(T*, const T*, const int32_t*, const float*, int64_t, int64_t, int64_t,  \
                                        cudaStream_t);                                                          \
  template void moe_row_dots<T>(float*, const T*, const T*, const int32_t*, int64_t, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

// Vocab-parallel cross-entropy's pieces on CUDA (see cuda_kernels.h): a block per row for the
// two passes over the logits, a thread per row for the combines. The CPU's semantics; the
// row's Σ exp is accumulated in fp32 (the CPU's in double).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void vocab_loss_stats_kernel(float* row_max, float* row_sum, float* target_logit, const T* logits,
                                        const int32_t* targets, int64_t Vl, int64_t vocab_start) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* z = logits + r * Vl;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < Vl; v += blockDim.x) m = fmaxf(m, to_float(z[v]));
  m = block_max(m, scratch);
  float sum = 0.0f;
  for (int64_t v = threadIdx.x; v < Vl; v += blockDim.x) sum += expf(to_float(z[v]) - m);
  sum = block_sum(sum, scratch);
  if (threadIdx.x != 0) return;
  const int64_t t = static_cast<int64_t>(targets[r]) - vocab_start;
  row_max[r] = m;
  row_sum[r] = sum;
  target_logit[r] = t >= 0 && t < Vl ? to_float(z[t]) : 0.0f;
}

__global__ void vocab_loss_rescale_kernel(float* row_sum, const float* local_max, const float* row_max, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    row_sum[i] *= expf(local_max[i] - row_max[i]);
}

__global__ void vocab_loss_finish_kernel(float* losses, const float* row_sum, const float* row_max,
                                         const float* target_logit, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    losses[i] = logf(row_sum[i]) + row_max[i] - target_logit[i];
}

template <typename T>
__global__ void vocab_loss_dlogits_kernel(T* logits, const int32_t* targets, const float* row_max, const float* row_sum,
                                          int64_t Vl, int64_t vocab_start, float dloss) {
  const int64_t r = blockIdx.x;
  T* z = logits + r * Vl;
  const float m = row_max[r], inv = 1.0f / row_sum[r];
  const int64_t t = static_cast<int64_t>(targets[r]) - vocab_start;
  for (int64_t v = threadIdx.x; v < Vl; v += blockDim.x)
    z[v] = from_float<T>(expf(to_float(z[v]) - m) * inv * dloss - (v == t ? dloss : 0.0f));
}

}  // namespace

template <typename T>
void vocab_loss_stats(float* row_max, float* row_sum, float* target_logit, const T* logits, const int32_t* targets,
                      int64_t rows, int64_t Vl, int64_t vocab_start, cudaStream_t stream) {
  if (rows == 0) return;
  vocab_loss_stats_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(row_max, row_sum, target_logit, logits,
                                                                                targets, Vl, vocab_start);
  TESSEL_CUDA_LAUNCH_CHECK();
}

void vocab_loss_rescale(float* row_sum, const float* local_max, const float* row_max, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  vocab_loss_rescale_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(row_sum, local_max, row_max, n);
  TESSEL_CUDA_LAUNCH_CHECK();
}

void vocab_loss_finish(float* losses, const float* row_sum, const float* row_max, const float* target_logit, int64_t n,
                       cudaStream_t stream) {
  if (n == 0) return;
  vocab_loss_finish_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(losses, row_sum, row_max, target_logit, n);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void vocab_loss_dlogits(T* logits, const int32_t* targets, const float* row_max, const float* row_sum, int64_t rows,
                        int64_t Vl, int64_t vocab_start, float dloss, cudaStream_t stream) {
  if (rows == 0) return;
  vocab_loss_dlogits_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, targets, row_max, row_sum, Vl,
                                                                                  vocab_start, dloss);
  TESSEL_CUDA_LAUNCH_CHECK();
}

#define INSTANTIATE(T)                                                                                           \
  template void vocab_loss_stats<T>(float*, float*, float*, const T*, const int32_t*, int64_t, int64_t, int64_t, \
                                    cudaStream_t);                                                               \
  template void vocab_loss_dlogits<T>(T*, const int32_t*, const float*, const float*, int64_t, int64_t, int64_t, \
                                      float, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

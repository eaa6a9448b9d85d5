// Fused classifier + cross-entropy on CUDA, chunk by chunk (see cuda_kernels.h): the logits of
// a chunk are fp32 (the softmax needs their range), their gradient is stored in T for the two
// gradient GEMMs. Chunks of kChunkRows rows bound the workspace: 512 × 50257 × (4 + 2) bytes
// = 154 MB for GPT-2 in bf16, against 1.6 GB for full fp32 logits of 8 × 1024 rows.
#include <algorithm>

#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"
#include "core/kernels/cuda/gemm.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int64_t kChunkRows = 512;
constexpr int kThreads = 512;

int64_t chunk_rows(int64_t N) { return std::max<int64_t>(1, std::min(N, kChunkRows)); }

// One block per row: loss = logsumexp(z) − z[target]; dlogits = dloss · (softmax − onehot).
template <typename T>
__global__ void softmax_cross_entropy_kernel(float* losses, T* dlogits, const float* logits, const int32_t* targets,
                                             int64_t V, float dloss) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const float* z = logits + r * V;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, z[v]);
  m = block_max(m, scratch);
  float sum = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) sum += expf(z[v] - m);
  sum = block_sum(sum, scratch);
  // A target outside the vocabulary (device targets are not checked on the host) gives a NaN
  // loss, which the step's non-finite guard reports, instead of a read out of bounds.
  const int32_t t = targets[r];
  const bool valid = t >= 0 && t < V;
  if (threadIdx.x == 0) losses[r] = valid ? m + logf(sum) - z[t] : NAN;
  if (dlogits == nullptr) return;
  const float inv = 1.0f / sum;
  T* d = dlogits + r * V;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
    d[v] = from_float<T>(dloss * (expf(z[v] - m) * inv - (v == t ? 1.0f : 0.0f)));
}

}  // namespace

size_t classifier_workspace_bytes(int64_t N, int64_t V, size_t element_bytes) {
  const size_t logits = size_t(chunk_rows(N) * V) * sizeof(float);
  return logits + size_t(chunk_rows(N) * V) * element_bytes;
}

template <typename T>
void classifier_forward_backward(Gemm& gemm, float* losses, T* dx, float* dweight, const T* x, const T* weight,
                                 const int32_t* targets, int64_t N, int64_t C, int64_t V, float dloss, void* workspace,
                                 cudaStream_t stream) {
  const cudaDataType_t type = data_type<T>();
  const int64_t rows = chunk_rows(N);
  float* logits = static_cast<float*>(workspace);
  T* dlogits = reinterpret_cast<T*>(logits + rows * V);
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t n = std::min(rows, N - r0);
    // logits (n, V) = x (n, C) · Wᵀ, W (V, C)
    gemm.run(logits, CUDA_R_32F, V, GemmOperand{x + r0 * C, type, C, false}, GemmOperand{weight, type, C, true}, n, V,
             C, 1.0f, 0.0f, nullptr, stream);
    softmax_cross_entropy_kernel<<<unsigned(n), kThreads, 0, stream>>>(losses + r0, dx ? dlogits : nullptr, logits,
                                                                       targets + r0, V, dloss);
    TESSEL_CUDA_LAUNCH_CHECK();
    if (dx == nullptr) continue;
    // dx (n, C) = dlogits (n, V) · W (V, C);  dW (V, C) += dlogitsᵀ · x
    gemm.run(dx + r0 * C, type, C, GemmOperand{dlogits, type, V, false}, GemmOperand{weight, type, C, false}, n, C, V,
             1.0f, 0.0f, nullptr, stream);
    gemm.run(dweight, CUDA_R_32F, C, GemmOperand{dlogits, type, V, true}, GemmOperand{x + r0 * C, type, C, false}, V, C,
             n, 1.0f, 1.0f, nullptr, stream);
  }
}

#define INSTANTIATE(T)                                                                                                 \
  template void classifier_forward_backward<T>(Gemm&, float*, T*, float*, const T*, const T*, const int32_t*, int64_t, \
                                               int64_t, int64_t, float, void*, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

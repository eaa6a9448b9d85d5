// Token (+ position) embedding on CUDA. Forward: one thread per output element. Backward: for
// the token table, one thread per channel walks the tokens in order, so repeated tokens add up
// in a fixed order without atomics (deterministic; a scatter to rows, not a column sum). The
// positions' gradient dwpe[t] = Σ_b dout[b, t] is a column sum over the B rows of (B, T·C):
// the two-stage kernels of column_sum.cuh.
#include "core/kernels/cuda/column_sum.cuh"
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

template <typename T>
__global__ void embedding_forward_kernel(T* out, const int32_t* tokens, const T* wte, const T* wpe, int64_t BT,
                                         int64_t T_, int64_t C, int64_t vocab_start, int64_t rows) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < BT * C; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / C, c = i % C;
    const int64_t row = int64_t(tokens[r]) - vocab_start;
    float v = (row >= 0 && row < rows) ? to_float(wte[row * C + c]) : 0.0f;
    if (wpe != nullptr) v += to_float(wpe[(r % T_) * C + c]);
    out[i] = from_float<T>(v);
  }
}

// Thread c of block b owns channel c of the table; rows of the table are visited in token order.
template <typename T>
__global__ void embedding_backward_wte_kernel(float* dwte, const T* dout, const int32_t* tokens, int64_t BT, int64_t C,
                                              int64_t vocab_start, int64_t rows) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  for (int64_t r = 0; r < BT; ++r) {
    const int64_t row = int64_t(tokens[r]) - vocab_start;
    if (row >= 0 && row < rows) dwte[row * C + c] += to_float(dout[r * C + c]);
  }
}

// Row b's term for column i = (t, c) of dout viewed as (B, T·C).
template <typename T>
struct PositionTerm {
  static constexpr int kOutputs = 1;
  const T* dout;
  int64_t TC;
  __device__ void operator()(int64_t b, int64_t i, float (&v)[1]) const { v[0] = to_float(dout[b * TC + i]); }
};

}  // namespace

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int64_t B, int64_t T_, int64_t C,
                       int64_t vocab_start, int64_t rows, cudaStream_t stream) {
  TESSEL_CHECK(rows >= 0) << "embedding_forward (CUDA): rows " << rows << " must be the table's row count";
  const int threads = 256;
  embedding_forward_kernel<<<grid_for(B * T_ * C, threads), threads, 0, stream>>>(out, tokens, wte, wpe, B * T_, T_, C,
                                                                                  vocab_start, rows);
  TESSEL_CUDA_LAUNCH_CHECK();
}

template <typename T>
void embedding_backward(float* dwte, float* dwpe, const T* dout, const int32_t* tokens, int64_t B, int64_t T_,
                        int64_t C, int64_t vocab_start, int64_t rows, float* scratch, int64_t scratch_floats,
                        cudaStream_t stream) {
  TESSEL_CHECK(rows >= 0) << "embedding_backward (CUDA): rows " << rows << " must be the table's row count";
  const int threads = 128;
  embedding_backward_wte_kernel<<<ceil_div(C, threads), threads, 0, stream>>>(dwte, dout, tokens, B * T_, C,
                                                                              vocab_start, rows);
  TESSEL_CUDA_LAUNCH_CHECK();
  if (dwpe != nullptr)
    column_sums(ColumnOutputs<1>{{dwpe}}, scratch, scratch_floats, B, T_ * C, PositionTerm<T>{dout, T_ * C}, stream,
                "embedding_backward");
}

#define INSTANTIATE(T)                                                                                              \
  template void embedding_forward<T>(T*, const int32_t*, const T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                     int64_t, cudaStream_t);                                                        \
  template void embedding_backward<T>(float*, float*, const T*, const int32_t*, int64_t, int64_t, int64_t, int64_t, \
                                      int64_t, float*, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

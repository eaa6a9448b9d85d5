// Bias gradient on CUDA: dbias (OC) += column sums of dout, the plain case of the two-stage
// deterministic column sum (column_sum.cuh), whose scratch size this file also defines.
#include "core/kernels/cuda/column_sum.cuh"
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

// Row r's term for column c: dout (N, OC) with row stride ldd.
template <typename T>
struct BiasTerm {
  static constexpr int kOutputs = 1;
  const T* dout;
  int64_t ldd;
  __device__ void operator()(int64_t r, int64_t c, float (&v)[1]) const { v[0] = to_float(dout[r * ldd + c]); }
};

}  // namespace

int64_t column_sum_scratch_floats(int64_t N, int64_t C) {
  const int64_t chunks = ceil_div(N, kColumnChunkRows);
  return chunks > 1 ? chunks * C : 0;
}

template <typename T>
void bias_backward(float* dbias, const T* dout, int64_t ldd, int64_t N, int64_t OC, float* scratch,
                   int64_t scratch_floats, cudaStream_t stream) {
  column_sums(ColumnOutputs<1>{{dbias}}, scratch, scratch_floats, N, OC, BiasTerm<T>{dout, ldd}, stream,
              "bias_backward");
}

#define INSTANTIATE(T) \
  template void bias_backward<T>(float*, const T*, int64_t, int64_t, int64_t, float*, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

// Matmul with bias on CUDA: the CPU's two weight layouts as cuBLASLt calls (gemm.h), bias
// fused into the forward GEMM's epilogue; the bias gradient is bias_backward's column sum.
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"
#include "core/kernels/cuda/gemm.h"

namespace tessel {
namespace cuda {

template <typename T>
void matmul_forward(Gemm& gemm, T* out, int64_t ldo, const T* inp, const T* weight, const T* bias, int64_t N, int64_t K,
                    int64_t OC, WeightLayout layout, cudaStream_t stream) {
  const cudaDataType_t type = data_type<T>();
  // kOutIn: out = inp · Wᵀ with W (OC, K);  kInOut: out = inp · W with W (K, OC).
  const GemmOperand a{inp, type, K, false};
  const GemmOperand b =
      layout == WeightLayout::kOutIn ? GemmOperand{weight, type, K, true} : GemmOperand{weight, type, OC, false};
  gemm.run(out, type, ldo, a, b, N, OC, K, 1.0f, 0.0f, bias, stream);
}

template <typename T>
void matmul_backward(Gemm& gemm, T* dinp, float* dweight, float* dbias, const T* dout, int64_t ldd, const T* inp,
                     const T* weight, int64_t N, int64_t K, int64_t OC, WeightLayout layout, bool accumulate_dinp,
                     float* scratch, int64_t scratch_floats, cudaStream_t stream) {
  const cudaDataType_t type = data_type<T>();
  if (dinp != nullptr) {
    // dinp (N, K) = dout (N, OC) · W (OC, K), or dout · Wᵀ for W (K, OC).
    const GemmOperand a{dout, type, ldd, false};
    const GemmOperand b =
        layout == WeightLayout::kOutIn ? GemmOperand{weight, type, K, false} : GemmOperand{weight, type, OC, true};
    gemm.run(dinp, type, K, a, b, N, K, OC, 1.0f, accumulate_dinp ? 1.0f : 0.0f, nullptr, stream);
  }
  if (dweight != nullptr) {
    if (layout == WeightLayout::kOutIn) {  // dW (OC, K) += doutᵀ · inp
      gemm.run(dweight, CUDA_R_32F, K, GemmOperand{dout, type, ldd, true}, GemmOperand{inp, type, K, false}, OC, K, N,
               1.0f, 1.0f, nullptr, stream);
    } else {  // dW (K, OC) += inpᵀ · dout
      gemm.run(dweight, CUDA_R_32F, OC, GemmOperand{inp, type, K, true}, GemmOperand{dout, type, ldd, false}, K, OC, N,
               1.0f, 1.0f, nullptr, stream);
    }
  }
  if (dbias != nullptr) bias_backward(dbias, dout, ldd, N, OC, scratch, scratch_floats, stream);
}

#define INSTANTIATE(T)                                                                                                 \
  template void matmul_forward<T>(Gemm&, T*, int64_t, const T*, const T*, const T*, int64_t, int64_t, int64_t,         \
                                  WeightLayout, cudaStream_t);                                                         \
  template void matmul_backward<T>(Gemm&, T*, float*, float*, const T*, int64_t, const T*, const T*, int64_t, int64_t, \
                                   int64_t, WeightLayout, bool, float*, int64_t, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel

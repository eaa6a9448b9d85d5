// Matmul with bias on OpenBLAS sgemm. The bias is folded into the GEMM by pre-filling the
// output rows and calling sgemm with beta = 1, which saves a pass over the output.
#include <cblas.h>

#include <cstring>

#include "core/kernels/cpu/cpu_kernels.h"
#include "core/kernels/cpu/row_reduce.h"

namespace tessel {
namespace cpu {

void matmul_forward(float* out, int64_t ldo, const float* inp, const float* weight, const float* bias, int64_t N,
                    int64_t K, int64_t OC, WeightLayout layout) {
  float beta = 0.0f;
  if (bias != nullptr) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; ++r) {
      std::memcpy(out + r * ldo, bias, static_cast<size_t>(OC) * sizeof(float));
    }
    beta = 1.0f;
  }
  if (layout == WeightLayout::kOutIn) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, K, 1.0f, inp, K, weight, K, beta, out, ldo);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, K, 1.0f, inp, K, weight, OC, beta, out, ldo);
  }
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, int64_t ldd, const float* inp,
                     const float* weight, int64_t N, int64_t K, int64_t OC, WeightLayout layout, bool accumulate_dinp) {
  const float beta_in = accumulate_dinp ? 1.0f : 0.0f;
  if (layout == WeightLayout::kOutIn) {
    // dinp (N, K) = dout (N, OC) · W (OC, K);  dW (OC, K) += doutᵀ · inp
    if (dinp != nullptr) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, K, OC, 1.0f, dout, ldd, weight, K, beta_in, dinp, K);
    }
    if (dweight != nullptr) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, K, N, 1.0f, dout, ldd, inp, K, 1.0f, dweight, K);
    }
  } else {
    // dinp (N, K) = dout (N, OC) · Wᵀ (W is (K, OC));  dW (K, OC) += inpᵀ · dout
    if (dinp != nullptr) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K, OC, 1.0f, dout, ldd, weight, OC, beta_in, dinp, K);
    }
    if (dweight != nullptr) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, OC, N, 1.0f, inp, K, dout, ldd, 1.0f, dweight, OC);
    }
  }
  if (dbias != nullptr) add_column_sums(dbias, dout, N, OC, ldd);
}

}  // namespace cpu
}  // namespace tessel

// Gemm: row-major products expressed in cuBLASLt's column-major terms.
//
// A row-major (r × c) matrix with row stride ld is, read column-major, its transpose: a
// (c × r) matrix with leading dimension ld. So row-major C = op(A)·op(B) is computed as
// column-major Cᵀ = op(B)ᵀ · op(A)ᵀ: B goes in cuBLASLt's first slot and A in its second, each
// transposed exactly when the caller asked for it.
#include "core/kernels/cuda/gemm.h"

#include <utility>

#include "core/kernels/cuda/cuda_check.h"

namespace tessel {
namespace cuda {
namespace {

// Descriptors live for one call; RAII so an error in between leaks nothing.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~MatmulDesc() {
    if (d) cublasLtMatmulDescDestroy(d);
  }
};
struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  Layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld) {
    TESSEL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
  }
  ~Layout() {
    if (l) cublasLtMatrixLayoutDestroy(l);
  }
};
struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() {
    if (p) cublasLtMatmulPreferenceDestroy(p);
  }
};

// The largest power of two (up to 256) dividing the address. cuBLASLt's heuristic assumes
// 256-byte aligned operands unless told otherwise, and an operand that starts inside a row (a
// column block of a wider buffer, a chunk of rows) can be less aligned than that.
uint32_t alignment(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

}  // namespace

Gemm::Gemm() {
  TESSEL_CUBLAS_CHECK(cublasLtCreate(&handle_));
  TESSEL_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
}

Gemm::~Gemm() {
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

void Gemm::run(void* c, cudaDataType_t c_type, int64_t ldc, const GemmOperand& a, const GemmOperand& b, int64_t M,
               int64_t N, int64_t K, float alpha, float beta, const void* bias, cudaStream_t stream) {
  if (M == 0 || N == 0) return;
  // An empty inner dimension adds nothing: done when c is kept (beta 1) and there is no bias.
  if (K == 0 && beta == 1.0f && bias == nullptr) return;
  TESSEL_CHECK(K > 0) << "Gemm: a product over an empty inner dimension that would rescale or bias its output";
  TESSEL_CHECK(a.type == b.type) << "Gemm: operands of different types";
  MatmulDesc desc;
  TESSEL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = b.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = a.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  TESSEL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  TESSEL_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  if (bias != nullptr) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    TESSEL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    TESSEL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  // Column-major shapes as stored: first slot op(B)ᵀ is (N × K), second op(A)ᵀ is (K × M).
  Layout first(b.type, b.transpose ? K : N, b.transpose ? N : K, b.ld);
  Layout second(a.type, a.transpose ? M : K, a.transpose ? K : M, a.ld);
  Layout out(c_type, N, M, ldc);

  // The heuristic reads the bias pointer's value for its alignment too (cublasLt.h).
  const uint32_t align_first = alignment(b.data), align_second = alignment(a.data), align_out = alignment(c);
  const uint32_t align_bias = bias != nullptr ? alignment(bias) : 0;
  const Key key{
      M,
      N,
      K,
      a.ld,
      b.ld,
      ldc,
      int(a.type),
      int(c_type),
      int(a.transpose) | int(b.transpose) << 1,
      int64_t(align_first) | int64_t(align_second) << 9 | int64_t(align_out) << 18 | int64_t(align_bias) << 27,
      bias != nullptr,
      beta != 0.0f};
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    Preference pref;
    TESSEL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.p));
    const size_t ws = kWorkspaceBytes;
    TESSEL_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_first},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_second},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_out},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_out}};
    for (const auto& kv : aligns)
      TESSEL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.p, kv.first, &kv.second, sizeof(kv.second)));
    // Split-K partial sums add in fp32 (the compute type), never in a bf16 output.
    const uint32_t reduction = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    TESSEL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                             &reduction, sizeof(reduction)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    TESSEL_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(handle_, desc.d, first.l, second.l, out.l, out.l, pref.p, 1, &result, &found));
    TESSEL_CHECK(found > 0) << "cuBLASLt has no algorithm for a (" << M << " x " << K << ") x (" << K << " x " << N
                            << ") product of type " << int(a.type) << " into type " << int(c_type);
    it = algos_.emplace(key, result.algo).first;
  }
  TESSEL_CUBLAS_CHECK(cublasLtMatmul(handle_, desc.d, &alpha, b.data, first.l, a.data, second.l, &beta, c, out.l, c,
                                     out.l, &it->second, workspace_, kWorkspaceBytes, stream));
}

}  // namespace cuda
}  // namespace tessel

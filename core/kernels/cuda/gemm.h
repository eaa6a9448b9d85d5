// Gemm: row-major GEMMs through cuBLASLt, the one place Tessel talks to cuBLAS.
//
// Owns a cuBLASLt handle and its workspace (allocated once, at construction: nothing is
// allocated per call) and remembers the algorithm cuBLASLt's heuristic picked for each shape,
// so a step asks the heuristic only on its first run. Inputs are fp32, bf16 or fp16 and always
// accumulate in fp32 (CUBLAS_COMPUTE_32F: for fp32 inputs that is true fp32, no TF32, which the
// parity runs need; for 16-bit inputs it is the tensor-core path with fp32 accumulation). The
// output may be wider than the inputs (bf16 inputs, fp32 output), which is how parameter
// gradients accumulate in fp32. An optional bias (of the output's type) is fused as cuBLASLt's
// BIAS epilogue. One Gemm per device and stream (its one workspace is reused by every call, in
// stream order): not thread-safe.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

namespace tessel {
namespace cuda {

// A row-major matrix operand: data, element type, row stride, and whether it enters the
// product transposed.
struct GemmOperand {
  const void* data = nullptr;
  cudaDataType_t type = CUDA_R_32F;
  int64_t ld = 0;
  bool transpose = false;
};

class Gemm {
 public:
  static constexpr size_t kWorkspaceBytes = 32 << 20;  // cuBLASLt's recommendation for Hopper

  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // c (M, N), row stride ldc, = alpha · op(a) (M, K) · op(b) (K, N) + beta · c (+ bias (N)
  // broadcast over rows). a and b share a type.
  void run(void* c, cudaDataType_t c_type, int64_t ldc, const GemmOperand& a, const GemmOperand& b, int64_t M,
           int64_t N, int64_t K, float alpha, float beta, const void* bias, cudaStream_t stream);

 private:
  // Shape, strides, types, transposes, operand alignments, bias, beta ≠ 0.
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int, int64_t, bool, bool>;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::map<Key, cublasLtMatmulAlgo_t> algos_;
};

// The storage type's cudaDataType: CUDA_R_32F, CUDA_R_16BF or CUDA_R_16F.
template <typename T>
constexpr cudaDataType_t data_type();
template <>
constexpr cudaDataType_t data_type<float>() {
  return CUDA_R_32F;
}
template <>
constexpr cudaDataType_t data_type<__nv_bfloat16>() {
  return CUDA_R_16BF;
}
template <>
constexpr cudaDataType_t data_type<__half>() {
  return CUDA_R_16F;
}

}  // namespace cuda
}  // namespace tessel

// Checks for CUDA runtime and cuBLASLt calls: a failure throws tessel::Error naming the call,
// the file and line that made it, and the library's own description of the failure.
//
//   TESSEL_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream));
//   some_kernel<<<grid, block, 0, stream>>>(...);
//   TESSEL_CUDA_LAUNCH_CHECK();  // a bad launch configuration surfaces here, not later
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/error.h"

#define TESSEL_CUDA_CHECK(expr)                                                                 \
  do {                                                                                          \
    const cudaError_t tessel_rc_ = (expr);                                                      \
    TESSEL_CHECK(tessel_rc_ == cudaSuccess) << #expr << ": " << cudaGetErrorString(tessel_rc_); \
  } while (0)

#define TESSEL_CUDA_LAUNCH_CHECK() TESSEL_CUDA_CHECK(cudaGetLastError())

#define TESSEL_CUBLAS_CHECK(expr)                                                                              \
  do {                                                                                                         \
    const cublasStatus_t tessel_rc_ = (expr);                                                                  \
    TESSEL_CHECK(tessel_rc_ == CUBLAS_STATUS_SUCCESS) << #expr << ": " << cublasLtGetStatusString(tessel_rc_); \
  } while (0)

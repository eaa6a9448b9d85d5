// The CUDA backend's launchers: every op of core/kernels/cpu/cpu_kernels.h, forward and
// backward, plus the optimizer's and the mixed-precision kernels. Built only with the CUDA
// toolkit (TESSEL_HAVE_CUDA).
//
// Same semantics as the CPU launchers (what accumulates, what is overwritten, layouts: see
// cpu_kernels.h), with two differences:
//  - Storage type. Activations, weights and their input gradients are stored in T: float
//    (parity runs), __nv_bfloat16 or __half. Arithmetic is fp32 throughout; parameter
//    gradients, norm statistics (mean, rstd) and attention's logsumexp are fp32 whatever T is,
//    so micro-batches accumulate gradients without bf16 rounding.
//  - Every launcher takes the stream it runs on, queues its work there and returns; nothing
//    synchronizes the device. Launch errors throw tessel::Error.
// Reductions run in a fixed order (no atomics), so a result is bitwise the same on every run
// of the same device and shape.
// Parameter gradients that are sums over rows (the norms' weight and bias, biases, positions)
// are summed in two stages (column_sum.cuh): blocks of 256 rows write partial sums to
// `scratch`, then the partials are added to the gradient in order. The caller owns that
// scratch: `scratch_floats` fp32 values, contents ignored, free for reuse once the stream has
// run the launch.
// Each op is one file in this folder: <op>.cu holds its kernels, then its launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/adamw_scalars.h"
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cuda {

class Gemm;
using cpu::WeightLayout;

// Floats of scratch per gradient summed over N rows of C columns: 0 up to 256 rows (the
// launchers then accept a null scratch). Defined in bias_grad.cu.
int64_t column_sum_scratch_floats(int64_t N, int64_t C);

// ---- embedding (embedding.cu): out (B*T, C) = wte[tokens - vocab_start] (+ wpe[t]); rows
// outside [vocab_start, vocab_start + rows) read zeros. Backward accumulates into dwte (rows, C)
// and dwpe (T, C). Unlike the CPU launcher, `rows` is required (the table's rows, not -1).
// scratch: column_sum_scratch_floats(B, T_ * C) when dwpe is not null (dwpe sums over b).
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int64_t B, int64_t T_, int64_t C,
                       int64_t vocab_start, int64_t rows, cudaStream_t stream);
template <typename T>
void embedding_backward(float* dwte, float* dwpe, const T* dout, const int32_t* tokens, int64_t B, int64_t T_,
                        int64_t C, int64_t vocab_start, int64_t rows, float* scratch, int64_t scratch_floats,
                        cudaStream_t stream);

// ---- LayerNorm (layernorm.cu): mean, rstd (N) saved; backward adds into dinp and
// accumulates dweight, dbias (C); scratch: 2 · column_sum_scratch_floats(N, C).
template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int64_t N,
                       int64_t C, float eps, cudaStream_t stream);
template <typename T>
void layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight,
                        const float* mean, const float* rstd, int64_t N, int64_t C, float* scratch,
                        int64_t scratch_floats, cudaStream_t stream);

// ---- RMSNorm (rmsnorm.cu): rstd (N) saved; backward adds into dinp, accumulates dweight;
// scratch: column_sum_scratch_floats(N, C).
template <typename T>
void rmsnorm_forward(T* out, float* rstd, const T* inp, const T* weight, int64_t N, int64_t C, float eps,
                     cudaStream_t stream);
template <typename T>
void rmsnorm_backward(T* dinp, float* dweight, const T* dout, const T* inp, const T* weight, const float* rstd,
                      int64_t N, int64_t C, float* scratch, int64_t scratch_floats, cudaStream_t stream);

// ---- GELU (tanh) and SwiGLU (activation.cu). swiglu: inp (N, 2F) = gate | up, out (N, F).
template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n, cudaStream_t stream);
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, cudaStream_t stream);
template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F, cudaStream_t stream);
template <typename T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int64_t N, int64_t F, cudaStream_t stream);

// ---- RoPE (rope.cu), Hugging Face convention, in place on `heads` heads at the start of each
// row of x (row stride ld); backward applies the inverse rotation.
template <typename T>
void rope_forward(T* x, int64_t ld, int64_t B, int64_t T_, int64_t heads, int64_t D, float theta, cudaStream_t stream);
template <typename T>
void rope_backward(T* dx, int64_t ld, int64_t B, int64_t T_, int64_t heads, int64_t D, float theta,
                   cudaStream_t stream);

// ---- Causal attention with grouped-query heads (attention.cu), flash-style: no T×T matrix
// is stored. qkv (B*T, (H + 2*KV)*D), out (B*T, H*D), lse (B, H, T) fp32; head dim D ≤ 128.
// Backward overwrites dqkv.
template <typename T>
void attention_forward(T* out, float* lse, const T* qkv, int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D,
                       cudaStream_t stream);
// `delta` (B, H, T) fp32 is scratch owned by the caller.
template <typename T>
void attention_backward(T* dqkv, float* delta, const T* dout, const T* qkv, const T* out, const float* lse, int64_t B,
                        int64_t T_, int64_t H, int64_t KV, int64_t D, cudaStream_t stream);

// ---- The same attention on tensor cores (flash_attention.cu), FlashAttention-2 style: same
// parameters, layouts and results (to bf16/fp16 rounding) as the two launchers above, for T =
// __nv_bfloat16 or __half only and head dims where flash_attention_supported(D); qkv, out, dout
// and dqkv 16-byte aligned. Backward overwrites dqkv; `delta` (B, H, T) fp32 is caller scratch.
bool flash_attention_supported(int64_t D);  // D = 64 or 128
template <typename T>
void flash_attention_forward(T* out, float* lse, const T* qkv, int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D,
                             cudaStream_t stream);
template <typename T>
void flash_attention_backward(T* dqkv, float* delta, const T* dout, const T* qkv, const T* out, const float* lse,
                              int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D, cudaStream_t stream);

// ---- matmul with bias (matmul.cu), through cuBLASLt (gemm.h); ldo / ldd as on the CPU.
// Backward: dinp (N, K) overwritten or, with accumulate_dinp, added to (may be null);
// dweight and dbias accumulate in fp32 (dbias may be null); scratch: column_sum_scratch_floats(N,
// OC) for dbias.
template <typename T>
void matmul_forward(Gemm& gemm, T* out, int64_t ldo, const T* inp, const T* weight, const T* bias, int64_t N, int64_t K,
                    int64_t OC, WeightLayout layout, cudaStream_t stream);
template <typename T>
void matmul_backward(Gemm& gemm, T* dinp, float* dweight, float* dbias, const T* dout, int64_t ldd, const T* inp,
                     const T* weight, int64_t N, int64_t K, int64_t OC, WeightLayout layout, bool accumulate_dinp,
                     float* scratch, int64_t scratch_floats, cudaStream_t stream);

// ---- fused classifier + cross-entropy (classifier.cu): the CPU's semantics (losses (N);
// when dx is not null, dx (N, C) overwritten and dweight (V, C) accumulated in fp32), chunk by
// chunk so no (N, V) logits exist: per chunk an fp32 logits GEMM, one kernel for the softmax,
// the loss and the logits' gradient (in T), then the two gradient GEMMs. `workspace` holds
// classifier_workspace_bytes(N, V, sizeof(T)) bytes.
size_t classifier_workspace_bytes(int64_t N, int64_t V, size_t element_bytes);
template <typename T>
void classifier_forward_backward(Gemm& gemm, float* losses, T* dx, float* dweight, const T* x, const T* weight,
                                 const int32_t* targets, int64_t N, int64_t C, int64_t V, float dloss, void* workspace,
                                 cudaStream_t stream);

// ---- vocab-parallel cross-entropy's pieces (vocab_loss.cu): the CPU's semantics
// (core/kernels/cpu/cpu_kernels.h); logits (rows, Vl) in T, statistics fp32.
template <typename T>
void vocab_loss_stats(float* row_max, float* row_sum, float* target_logit, const T* logits, const int32_t* targets,
                      int64_t rows, int64_t Vl, int64_t vocab_start, cudaStream_t stream);
void vocab_loss_rescale(float* row_sum, const float* local_max, const float* row_max, int64_t n, cudaStream_t stream);
void vocab_loss_finish(float* losses, const float* row_sum, const float* row_max, const float* target_logit, int64_t n,
                       cudaStream_t stream);
template <typename T>
void vocab_loss_dlogits(T* logits, const int32_t* targets, const float* row_max, const float* row_sum, int64_t rows,
                        int64_t Vl, int64_t vocab_start, float dloss, cudaStream_t stream);

// ---- residual (residual.cu): out = a + b, out may alias a or b.
template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n, cudaStream_t stream);

// ---- Mixture-of-Experts permutation (moe.cu), as cpu_kernels.h's moe_*: out has N rows for the
// scatter; scale may be null. The scatter adds rows in the CPU's order (deterministic).
template <typename T>
void moe_gather_rows(T* out, const T* inp, const int32_t* rows, const float* scale, int64_t M, int64_t C,
                     cudaStream_t stream);
template <typename T>
void moe_scatter_add_rows(T* out, const T* inp, const int32_t* rows, const float* scale, int64_t N, int64_t M,
                          int64_t C, cudaStream_t stream);
template <typename T>
void moe_row_dots(float* out, const T* a, const T* b, const int32_t* rows, int64_t M, int64_t C, cudaStream_t stream);

// ---- bias gradient (bias_grad.cu): dbias (OC) += column sums of dout (N rows, stride ldd);
// scratch: column_sum_scratch_floats(N, OC).
template <typename T>
void bias_backward(float* dbias, const T* dout, int64_t ldd, int64_t N, int64_t OC, float* scratch,
                   int64_t scratch_floats, cudaStream_t stream);

// ---- casts (cast.cu): dst[i] = src[i] rounded to nearest even.
template <typename Src, typename Dst>
void cast(Dst* dst, const Src* src, int64_t n, cudaStream_t stream);

// ---- AdamW (adamw.cu): core/adamw_scalars.h's expression over fp32 master weights, grads and
// moments; when param_copy is not null the updated weight is also written there in its
// storage type (the bf16 weights the next forward reads).
template <typename T>
void adamw_update(float* param, T* param_copy, const float* grad, float* m, float* v, int64_t n, const AdamWScalars& k,
                  cudaStream_t stream);

// ---- squared norm (global_norm.cu): *out (one float on the device) = Σ x[i]², summed in a fixed
// order. `partials` holds global_norm_partials() floats of scratch.
int global_norm_partials();
void sum_squares(float* out, float* partials, const float* x, int64_t n, cudaStream_t stream);

// ---- non-finite check (global_norm.cu): *flag (an int on the device) becomes 1 if any x[i]
// is inf or nan; left untouched otherwise. Dynamic loss scaling reads it.
void find_nonfinite(int* flag, const float* x, int64_t n, cudaStream_t stream);

}  // namespace cuda
}  // namespace tessel

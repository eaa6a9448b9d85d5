// The CPU backend: fp32 launchers for every op, forward and backward.
//
// A launcher takes raw pointers and sizes, nothing else: shape and dtype checks live in
// core/ops.h, which dispatches here. Each op is one file in this folder. Conventions:
//  - Row-major; N = B*T rows of width C unless said otherwise.
//  - Parameter gradients (dweight, dbias, dwte, ...) ACCUMULATE (+=): micro-batches of one step
//    and tied weights add into the same buffer, which the trainer zeroes once per step.
//  - Input gradients are overwritten unless the name says `accumulate`, except the norms', which
//    add into dinp because their input is the residual stream, whose gradient already holds the
//    pass-through of the residual connection.
//  - Reductions over rows use fixed-size row chunks combined in a fixed order, so results are
//    bitwise identical whatever the number of OpenMP threads.
// Threading: OpenMP inside each launcher; launchers must not be called concurrently on
// overlapping outputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/adamw_scalars.h"

namespace tessel {
namespace cpu {

// ---- embedding: out[b,t,:] = wte[tokens[b,t],:] (+ wpe[t,:] when wpe is not null)
// wte holds the rows [vocab_start, vocab_start + rows) of the table (a tensor-parallel shard:
// tokens outside it read zeros, and their gradients go to the rank that holds them).
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int64_t B, int64_t T,
                       int64_t C, int64_t vocab_start = 0, int64_t rows = -1);
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int64_t B, int64_t T,
                        int64_t C, int64_t vocab_start = 0, int64_t rows = -1);

// ---- matmul with bias. How the weight is stored:
//  kOutIn: [OC, K] (torch nn.Linear, LLaMA)     out = inp · Wᵀ + b
//  kInOut: [K, OC] (GPT-2 Conv1D)               out = inp · W + b
// `ldo` / `ldd` are the row strides of out / dout, so one projection can write into a column
// block of a wider buffer (LLaMA's q, k and v land side by side like GPT-2's c_attn output).
enum class WeightLayout { kOutIn, kInOut };
void matmul_forward(float* out, int64_t ldo, const float* inp, const float* weight, const float* bias, int64_t N,
                    int64_t K, int64_t OC, WeightLayout layout);
// dinp (N, K) is overwritten, or added to when accumulate_dinp; dinp may be null.
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, int64_t ldd, const float* inp,
                     const float* weight, int64_t N, int64_t K, int64_t OC, WeightLayout layout, bool accumulate_dinp);

// ---- LayerNorm over the last dimension; mean and rstd (N) are saved for backward.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

// ---- RMSNorm: out = inp · rsqrt(mean(inp²) + eps) · weight; rstd (N) saved for backward.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

// ---- GELU, tanh approximation (GPT-2's gelu_new), elementwise over n values.
void gelu_forward(float* out, const float* inp, int64_t n);
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n);

// ---- SwiGLU: inp (N, 2F) holds gate | up; out (N, F) = silu(gate) · up.
void swiglu_forward(float* out, const float* inp, int64_t N, int64_t F);
void swiglu_backward(float* dinp, const float* inp, const float* dout, int64_t N, int64_t F);

// ---- Rotary position embedding, Hugging Face convention (element i rotates with i + D/2,
// inv_freq = theta^(-2i/D)), in place on `heads` heads of width D at the start of each of
// the B*T rows of x (row stride ld); row r has position r % T. Backward rotates the gradient
// back (the inverse rotation), also in place.
void rope_forward(float* x, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta);
void rope_backward(float* dx, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta);

// ---- Causal self-attention with grouped-query heads, flash-style: one query row at a time
// against its keys, softmax statistics kept as one logsumexp per row, nothing T×T stored.
// qkv (B*T, (H + 2*KV)*D) rows hold q (H heads) | k (KV heads) | v (KV heads); query head h
// reads kv head h / (H/KV). out (B*T, H*D); lse (B, H, T) is saved for backward.
void attention_forward(float* out, float* lse, const float* qkv, int64_t B, int64_t T, int64_t H, int64_t KV,
                       int64_t D);
// dqkv (B*T, (H + 2*KV)*D) is overwritten.
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse, int64_t B,
                        int64_t T, int64_t H, int64_t KV, int64_t D);

// ---- Mixture-of-Experts permutation. rows (M): the token (row of the (N, C) side) of each of
// the M permuted rows; scale (M) or null (all 1).
//   gather:      out (M, C) = scale[r] · inp[rows[r]]
//   scatter_add: out (N, C)[rows[r]] += scale[r] · inp[r], rows added in order r = 0, 1, ...
//   row_dots:    out (M) = a[r] · b[rows[r]] (a (M, C), b (N, C)), summed in double
void moe_gather_rows(float* out, const float* inp, const int32_t* rows, const float* scale, int64_t M, int64_t C);
void moe_scatter_add_rows(float* out, const float* inp, const int32_t* rows, const float* scale, int64_t M, int64_t C);
void moe_row_dots(float* out, const float* a, const float* b, const int32_t* rows, int64_t M, int64_t C);

// ---- residual: out = a + b (out may alias a or b). Its backward is the identity on both inputs.
void residual_forward(float* out, const float* a, const float* b, int64_t n);

// ---- Fused classifier: logits = x · Wᵀ (W (V, C)), softmax and cross-entropy per row, and,
// when dx is not null, the gradients of dloss · Σ losses: dx (N, C) overwritten, dweight (V, C)
// accumulated. Rows are processed in chunks so at most a chunk of logits is ever alive.
// losses (N) receives each row's loss. targets must be in [0, V). `workspace` holds
// classifier_workspace_floats(N, V) floats: the caller owns it so that no step allocates (a
// fresh multi-megabyte buffer per call costs page faults on every step).
int64_t classifier_workspace_floats(int64_t N, int64_t V);
void classifier_forward_backward(float* losses, float* dx, float* dweight, const float* x, const float* weight,
                                 const int32_t* targets, int64_t N, int64_t C, int64_t V, float dloss,
                                 float* workspace);

// ---- Vocab-parallel cross-entropy (vocab_loss.cc): a rank's pieces of the loss over a
// vocabulary split across the tensor-parallel group (core/model/vocab_parallel_loss.h). The
// rank holds logits (rows, Vl) of ids [vocab_start, vocab_start + Vl); targets are global ids.
// stats, per row: row_max = max logit, row_sum = Σ exp(logit − row_max) (summed in double), and
// target_logit = the target's logit where this rank holds it, else 0.
void vocab_loss_stats(float* row_max, float* row_sum, float* target_logit, const float* logits, const int32_t* targets,
                      int64_t rows, int64_t Vl, int64_t vocab_start);
// After the max over the group: row_sum[i] *= exp(local_max[i] − row_max[i]).
void vocab_loss_rescale(float* row_sum, const float* local_max, const float* row_max, int64_t n);
// After the sums over the group: losses[i] = log(row_sum[i]) + row_max[i] − target_logit[i].
void vocab_loss_finish(float* losses, const float* row_sum, const float* row_max, const float* target_logit, int64_t n);
// In place: logits := (softmax − onehot(target)) · dloss, with the group's row_max and row_sum.
void vocab_loss_dlogits(float* logits, const int32_t* targets, const float* row_max, const float* row_sum, int64_t rows,
                        int64_t Vl, int64_t vocab_start, float dloss);

// ---- AdamW (adamw.cc): the update of core/adamw_scalars.h on each range, elementwise, so the
// result does not depend on the number of threads. All ranges run in one parallel region (a
// region per parameter, about 150 for GPT-2, costs a fork and a barrier each). Buffers of one
// range must not overlap; ranges must not overlap each other.
struct AdamWRange {
  float* param = nullptr;       // (n) updated in place
  const float* grad = nullptr;  // (n)
  float* m = nullptr;           // (n) updated in place
  float* v = nullptr;           // (n) updated in place
  int64_t n = 0;
  AdamWScalars k;
};
void adamw_update(const AdamWRange* ranges, size_t count);

// ---- Squared norm (global_norm.cc): Σ x[i]² in double, bitwise deterministic for a given n
// whatever the number of threads: chunks of kSumOfSquaresChunk elements, each summed in double,
// then the chunk sums added in chunk order. x: (n).
inline constexpr int64_t kSumOfSquaresChunk = 4096;  // part of the numerical definition: fixed
double sum_of_squares(const float* x, int64_t n);

}  // namespace cpu
}  // namespace tessel

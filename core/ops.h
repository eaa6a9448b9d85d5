// Ops: the tensor-level entry points that model code calls.
//
// Each op checks shapes, dtypes and devices, then dispatches by the tensors' device: CPU
// tensors (F32) to core/kernels/cpu, a device's tensors (F32, BF16 or F16 values; F32
// gradients and statistics) to the DeviceBackend that made them (core/device_backend.h: the
// CUDA backend's DeviceContext). All operands of one op must be on one side. Semantics (what
// accumulates, what is overwritten, layouts) are those documented in
// core/kernels/cpu/cpu_kernels.h, on every backend.
// Ops never allocate their outputs: callers own every buffer, which keeps memory explicit.
// Shapes: x (N, C) with N = B*T rows; tokens (B, T) int32.
#pragma once

#include "core/kernels/cpu/cpu_kernels.h"
#include "core/tensor.h"

namespace tessel {
namespace ops {

using cpu::WeightLayout;

// wte: the whole table, or rows [vocab_start, vocab_start + wte.size(0)) of a table of
// vocab_size rows (vocab-parallel: other tokens read zeros and send no gradient here).
void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                       int64_t vocab_start = 0, int64_t vocab_size = -1);
void embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                        int64_t vocab_start = 0);

// out may be a column block of a wider buffer: out_cols says where (first column and buffer
// width); pass {} for a plain (N, OC) output.
struct ColumnBlock {
  int64_t first = 0;
  int64_t width = 0;  // 0: the output is exactly (N, OC)
};
void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias, WeightLayout layout,
                    ColumnBlock block = {});
void matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias, const Tensor& dout,
                     const Tensor& inp, const Tensor& weight, WeightLayout layout, bool accumulate_dinp,
                     ColumnBlock block = {});

void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                       const Tensor& weight, const Tensor& bias, float eps);
void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                        const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd);
void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight, float eps);
void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd);

void gelu_forward(const Tensor& out, const Tensor& inp);
void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout);
void swiglu_forward(const Tensor& out, const Tensor& inp);
void swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout);

// qkv (B*T, (H + 2*KV)*D): rotates the q and k heads in place.
void rope_forward(const Tensor& qkv, int64_t B, int64_t T, int64_t H, int64_t KV, float theta);
void rope_backward(const Tensor& dqkv, int64_t B, int64_t T, int64_t H, int64_t KV, float theta);

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B, int64_t T, int64_t H,
                       int64_t KV);
void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                        int64_t B, int64_t T, int64_t H, int64_t KV);

void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b);

// Mixture-of-Experts token permutation (cpu_kernels.h): rows I32 (M), scale F32 (M) or null, on
// the same side as the values.
void moe_gather_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale);
void moe_scatter_add_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale);
void moe_row_dots(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& rows);

// losses (N); dx and dweight may both be null (evaluation only). workspace: F32 of at least
// classifier_workspace_numel(N, V) elements, owned by the caller.
int64_t classifier_workspace_numel(int64_t N, int64_t V);
void classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                                 const Tensor& weight, const Tensor& targets, float dloss, const Tensor& workspace);

// Vocab-parallel cross-entropy's pieces (cpu_kernels.h): logits (rows, Vl) of this rank's ids
// from vocab_start, values; targets I32 (rows); the statistics F32 (rows) each.
void vocab_loss_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, const Tensor& logits,
                      const Tensor& targets, int64_t vocab_start);
void vocab_loss_rescale(const Tensor& row_sum, const Tensor& local_max, const Tensor& row_max);
void vocab_loss_finish(const Tensor& losses, const Tensor& row_sum, const Tensor& row_max, const Tensor& target_logit);
void vocab_loss_dlogits(const Tensor& logits, const Tensor& targets, const Tensor& row_max, const Tensor& row_sum,
                        int64_t vocab_start, float dloss);

}  // namespace ops
}  // namespace tessel

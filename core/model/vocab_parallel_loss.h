// Cross-entropy over a vocabulary split across the tensor-parallel group, without gathering
// logits (Megatron's vocab-parallel cross-entropy).
//
// Each rank holds rows [vocab_start, vocab_start + Vl) of the output weight. Logits are made
// in chunks of rows and not kept: a first pass finds each row's local max, local Σ exp and the
// target's logit (on the rank that owns the target); three all-reduces over the group combine
// them into the global log-sum-exp and target logit, so loss = lse - logit[target] on every
// rank. A second pass remakes the logits to form dlogits = (softmax - onehot) · dloss and
// accumulates dweight and the (partial, to be reduced by the caller) dx. The per-row pieces are
// ops (core/ops.h), so the same code runs on the CPU and on a device; the logits are kept in the
// values' type (fp32 on the CPU).
#pragma once

#include "core/device_backend.h"
#include "core/model/tp_context.h"
#include "core/tensor.h"

namespace tessel {

// Rows of logits per chunk; the workspace holds one chunk: (min(N, kLossChunkRows), Vl).
inline constexpr int64_t kLossChunkRows = 128;

struct VocabParallelLossBuffers {
  Tensor logits;                               // (min(N, kLossChunkRows), Vl)
  Tensor row_max, local_max, row_sum, target;  // (N) each
  // On `device` (null: the CPU), logits in `values`, the rest F32.
  static VocabParallelLossBuffers allocate(int64_t N, int64_t Vl, DeviceBackend* device, DType values);
};

// Every id of CPU `targets` in [0, V), or an error naming the position (device targets are not
// read on the host: their kernels never index with an id outside the rank's range).
void check_vocab_targets(const Tensor& targets, int64_t V);

// losses (N): the per-row loss. dx (N, C) is overwritten with this rank's partial input
// gradient and dweight (Vl, C) accumulates, both scaled by dloss; pass null for evaluation.
// x (N, C), weight (Vl, C) [out, in], targets I32 (N) global ids.
void vocab_parallel_loss(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                         const Tensor& weight, const Tensor& targets, float dloss, int64_t vocab_start,
                         VocabParallelLossBuffers& buffers, const TpContext& tp);

}  // namespace tessel

#include "core/model/vocab_parallel_loss.h"

#include <algorithm>
#include "core/device_backend.h"
#include "core/error.h"
#include "core/ops.h"

namespace tessel {

VocabParallelLossBuffers VocabParallelLossBuffers::allocate(int64_t N, int64_t Vl, DeviceBackend* device,
                                                            DType values) {
  VocabParallelLossBuffers b;
  b.logits = empty_on(device, {std::min(kLossChunkRows, N), Vl}, values);
  b.row_max = empty_on(device, {N}, DType::F32);
  b.local_max = empty_on(device, {N}, DType::F32);
  b.row_sum = empty_on(device, {N}, DType::F32);
  b.target = empty_on(device, {N}, DType::F32);
  return b;
}

void check_vocab_targets(const Tensor& targets, int64_t V) {
  if (!targets.device().is_cpu()) return;  // a device's kernels never index with them
  const int32_t* tgt = targets.data<int32_t>();
  for (int64_t i = 0; i < targets.numel(); ++i) {
    TESSEL_CHECK(tgt[i] >= 0 && tgt[i] < V) << "vocab_parallel_loss: target id " << tgt[i] << " at position " << i
                                            << " is outside the vocabulary [0, " << V << ")";
  }
}

void vocab_parallel_loss(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                         const Tensor& weight, const Tensor& targets, float dloss, int64_t vocab_start,
                         VocabParallelLossBuffers& buf, const TpContext& tp) {
  const int64_t N = x.size(0), C = x.size(1), Vl = weight.size(0);
  TESSEL_CHECK(weight.size(1) == C && losses.numel() == N && targets.numel() == N)
      << "vocab_parallel_loss: x " << x.str() << ", weight " << weight.str() << ", targets " << targets.str();
  check_vocab_targets(targets, Vl * tp.size());
  const int64_t chunk = buf.logits.size(0);
  auto chunk_logits = [&](int64_t r0, int64_t rows) {
    Tensor out = buf.logits.slice(0, rows);
    ops::matmul_forward(out, x.slice(r0, r0 + rows), weight, nullptr, ops::WeightLayout::kOutIn);
    return out;
  };
  // Pass 1: local max, Σ exp relative to it, and the target logit where this rank owns it.
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const int64_t rows = std::min(chunk, N - r0);
    ops::vocab_loss_stats(buf.row_max.slice(r0, r0 + rows), buf.row_sum.slice(r0, r0 + rows),
                          buf.target.slice(r0, r0 + rows), chunk_logits(r0, rows), targets.slice(r0, r0 + rows),
                          vocab_start);
  }
  // Combine: global max, Σ exp rescaled to it, the owner's target logit.
  buf.local_max.copy_from(buf.row_max);
  if (tp.size() > 1) tp.group()->all_reduce(buf.row_max, ReduceOp::kMax);
  ops::vocab_loss_rescale(buf.row_sum, buf.local_max, buf.row_max);
  tp.all_reduce(buf.row_sum);
  tp.all_reduce(buf.target);
  ops::vocab_loss_finish(losses, buf.row_sum, buf.row_max, buf.target);
  if (dx == nullptr) return;
  // Pass 2: dlogits = (softmax - onehot) · dloss, then dx = dlogits · W and dW += dlogitsᵀ · x.
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const int64_t rows = std::min(chunk, N - r0);
    const Tensor logits = chunk_logits(r0, rows);
    ops::vocab_loss_dlogits(logits, targets.slice(r0, r0 + rows), buf.row_max.slice(r0, r0 + rows),
                            buf.row_sum.slice(r0, r0 + rows), vocab_start, dloss);
    const Tensor dx_rows = dx->slice(r0, r0 + rows);
    ops::matmul_backward(&dx_rows, *dweight, nullptr, logits, x.slice(r0, r0 + rows), weight, ops::WeightLayout::kOutIn,
                         false);
  }
}

}  // namespace tessel

#include "core/model/vocab_parallel_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/ops.h"

namespace tessel {

VocabParallelLossBuffers VocabParallelLossBuffers::allocate(int64_t N, int64_t Vl) {
  VocabParallelLossBuffers b;
  b.logits = Tensor::empty({kLossChunkRows, Vl}, DType::F32);
  b.row_max = Tensor::empty({N}, DType::F32);
  b.local_max = Tensor::empty({N}, DType::F32);
  b.row_sum = Tensor::empty({N}, DType::F32);
  b.target = Tensor::empty({N}, DType::F32);
  return b;
}

void vocab_parallel_loss(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                         const Tensor& weight, const Tensor& targets, float dloss, int64_t vocab_start,
                         VocabParallelLossBuffers& buf, const TpContext& tp) {
  const int64_t N = x.size(0), C = x.size(1), Vl = weight.size(0);
  TESSEL_CHECK(weight.size(1) == C && losses.numel() == N && targets.numel() == N)
      << "vocab_parallel_loss: x " << x.str() << ", weight " << weight.str() << ", targets " << targets.str();
  const int32_t* tgt = targets.data<int32_t>();
  const int64_t V = Vl * tp.size();
  for (int64_t i = 0; i < N; ++i) {
    TESSEL_CHECK(tgt[i] >= 0 && tgt[i] < V) << "vocab_parallel_loss: target id " << tgt[i] << " at position " << i
                                            << " is outside the vocabulary [0, " << V << ")";
  }
  float* mx = buf.row_max.data<float>();
  float* sm = buf.row_sum.data<float>();
  float* tl = buf.target.data<float>();
  auto chunk_logits = [&](int64_t r0, int64_t rows) {
    Tensor out = buf.logits.slice(0, rows);
    ops::matmul_forward(out, x.slice(r0, r0 + rows), weight, nullptr, ops::WeightLayout::kOutIn);
    return out;
  };
  // Pass 1: local max, Σ exp relative to it, and the target logit where this rank owns it.
  for (int64_t r0 = 0; r0 < N; r0 += kLossChunkRows) {
    const int64_t rows = std::min(kLossChunkRows, N - r0);
    const float* l = chunk_logits(r0, rows).data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = l + i * Vl;
      float m = -INFINITY;
      for (int64_t v = 0; v < Vl; ++v) m = std::max(m, row[v]);
      double s = 0;
      for (int64_t v = 0; v < Vl; ++v) s += std::exp(static_cast<double>(row[v] - m));
      const int64_t t = static_cast<int64_t>(tgt[r0 + i]) - vocab_start;
      mx[r0 + i] = m;
      sm[r0 + i] = static_cast<float>(s);
      tl[r0 + i] = t >= 0 && t < Vl ? row[t] : 0.0f;
    }
  }
  // Combine: global max, Σ exp rescaled to it, the owner's target logit.
  buf.local_max.copy_from(buf.row_max);
  if (tp.size() > 1) tp.group()->all_reduce(buf.row_max, ReduceOp::kMax);
  const float* lm = buf.local_max.data<float>();
  for (int64_t i = 0; i < N; ++i) sm[i] *= std::exp(lm[i] - mx[i]);
  tp.all_reduce(buf.row_sum);
  tp.all_reduce(buf.target);
  float* loss = losses.data<float>();
  for (int64_t i = 0; i < N; ++i) loss[i] = std::log(sm[i]) + mx[i] - tl[i];
  if (dx == nullptr) return;
  // Pass 2: dlogits = (softmax - onehot) · dloss, then dx = dlogits · W and dW += dlogitsᵀ · x.
  for (int64_t r0 = 0; r0 < N; r0 += kLossChunkRows) {
    const int64_t rows = std::min(kLossChunkRows, N - r0);
    const Tensor logits = chunk_logits(r0, rows);
    float* l = logits.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      float* row = l + i * Vl;
      const float m = mx[r0 + i], inv = 1.0f / sm[r0 + i];
      for (int64_t v = 0; v < Vl; ++v) row[v] = std::exp(row[v] - m) * inv * dloss;
      const int64_t t = static_cast<int64_t>(tgt[r0 + i]) - vocab_start;
      if (t >= 0 && t < Vl) row[t] -= dloss;
    }
    const Tensor dx_rows = dx->slice(r0, r0 + rows);
    ops::matmul_backward(&dx_rows, *dweight, nullptr, logits, x.slice(r0, r0 + rows), weight, ops::WeightLayout::kOutIn,
                         false);
  }
}

}  // namespace tessel

#include "core/model/tp_context.h"

#include <cstring>

#include "core/error.h"

namespace tessel {

TpContext::TpContext(Communicator* group, bool sequence_parallel, int64_t B, int64_t T, int64_t C, int64_t kv_heads)
    : group_(group), sequence_parallel_(sequence_parallel), B_(B), T_(T), C_(C) {
  if (kv_heads > 0 && kv_heads < size()) {
    TESSEL_CHECK(size() % kv_heads == 0) << kv_heads << " key/value heads cannot be shared by " << size()
                                         << " tensor-parallel ranks";
    kv_replicas_ = static_cast<int>(size() / kv_heads);
    kv_group_ = group_->split(rank() / kv_replicas_, rank(), group_->name() + " kv");
  }
  TESSEL_CHECK(!this->sequence_parallel() || T % size() == 0)
      << "sequence parallelism splits the " << T << " positions of a sequence over " << size()
      << " tensor-parallel ranks, which does not divide them";
  if (this->sequence_parallel()) scratch_ = Tensor::empty({B * T, C}, DType::F32);
}

void TpContext::all_reduce(const Tensor& x) const {
  if (size() > 1) group_->all_reduce(x, ReduceOp::kSum);
}

void TpContext::all_reduce_kv(const Tensor& x) const {
  if (kv_group_) kv_group_->all_reduce(x, ReduceOp::kSum);
}

// Rank-major staging: block r holds rank r's rows (b, t_local) for t in its range.
void TpContext::reduce_to_local(const Tensor& full, const Tensor& local) {
  if (!sequence_parallel()) {
    if (full.raw() != local.raw()) local.copy_from(full);
    all_reduce(local);
    return;
  }
  const int64_t P = size(), Tl = T_ / P;
  const size_t row_bytes = static_cast<size_t>(C_) * sizeof(float);
  const float* src = full.data<float>();
  float* staged = scratch_.data<float>();
  for (int64_t r = 0; r < P; ++r) {
    for (int64_t b = 0; b < B_; ++b) {
      std::memcpy(staged + ((r * B_ + b) * Tl) * C_, src + (b * T_ + r * Tl) * C_, row_bytes * static_cast<size_t>(Tl));
    }
  }
  group_->reduce_scatter(scratch_, local, ReduceOp::kSum);
}

void TpContext::gather_to_full(const Tensor& local, const Tensor& full) {
  if (!sequence_parallel()) {
    if (full.raw() != local.raw()) full.copy_from(local);
    return;
  }
  const int64_t P = size(), Tl = T_ / P;
  const size_t row_bytes = static_cast<size_t>(C_) * sizeof(float);
  group_->all_gather(local, scratch_);
  const float* staged = scratch_.data<float>();
  float* dst = full.data<float>();
  for (int64_t r = 0; r < P; ++r) {
    for (int64_t b = 0; b < B_; ++b) {
      std::memcpy(dst + (b * T_ + r * Tl) * C_, staged + ((r * B_ + b) * Tl) * C_, row_bytes * static_cast<size_t>(Tl));
    }
  }
}

}  // namespace tessel

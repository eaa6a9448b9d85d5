#include "core/model/tp_context.h"

#include "core/device_backend.h"
#include "core/error.h"

namespace tessel {

TpContext::TpContext(Communicator* group, bool sequence_parallel, int64_t B, int64_t T, int64_t C, int64_t kv_heads,
                     DeviceBackend* device, DType values)
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
  if (this->sequence_parallel()) scratch_ = empty_on(device, {B * T, C}, values);
}

void TpContext::all_reduce(const Tensor& x) const {
  if (size() > 1) group_->all_reduce(x, ReduceOp::kSum);
}

void TpContext::all_reduce_kv(const Tensor& x) const {
  if (kv_group_) kv_group_->all_reduce(x, ReduceOp::kSum);
}

// Rank-major staging: block r holds rank r's rows (b, t_local) for t in its range. Each run of
// Tl rows is one copy (a memcpy on the CPU, a device-to-device copy queued on a device), so the
// reordering runs wherever the tensors live.
void TpContext::permute(const Tensor& seq_major, const Tensor& rank_major, bool to_rank_major) const {
  const int64_t P = size(), Tl = T_ / P, run = Tl * C_;
  for (int64_t r = 0; r < P; ++r) {
    for (int64_t b = 0; b < B_; ++b) {
      const Tensor staged = rank_major.view(((r * B_ + b) * Tl) * C_, {run});
      const Tensor seq = seq_major.view((b * T_ + r * Tl) * C_, {run});
      if (to_rank_major) {
        staged.copy_from(seq);
      } else {
        seq.copy_from(staged);
      }
    }
  }
}

void TpContext::reduce_to_local(const Tensor& full, const Tensor& local) {
  if (!sequence_parallel()) {
    if (full.raw() != local.raw()) local.copy_from(full);
    all_reduce(local);
    return;
  }
  permute(full, scratch_, true);
  group_->reduce_scatter(scratch_, local, ReduceOp::kSum);
}

void TpContext::gather_to_full(const Tensor& local, const Tensor& full) {
  if (!sequence_parallel()) {
    if (full.raw() != local.raw()) full.copy_from(local);
    return;
  }
  group_->all_gather(local, scratch_);
  permute(full, scratch_, false);
}

}  // namespace tessel

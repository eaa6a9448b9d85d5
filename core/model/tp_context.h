// TpContext: the tensor-parallel group a model shard runs in, and the two communication
// patterns of Megatron-style layers (Shoeybi et al.):
//   - after a row-parallel layer's forward and a column-parallel layer's backward, partial
//     sums over the group are reduced: all-reduce, or with sequence parallelism a
//     reduce-scatter that leaves each rank its part of the sequence;
//   - before a column-parallel layer's forward and a row-parallel layer's backward, with
//     sequence parallelism, the ranks' parts of the sequence are all-gathered.
// Sequence parallelism splits the T positions of each sequence: rank r holds positions
// [r·T/tp, (r+1)·T/tp) of every sequence, rows ordered (b, t). A group of one (or none) makes
// every call a no-op, so the single-rank model runs the same code.
//
// The model depends only on the Communicator interface (a header), not on an MPI or NCCL
// implementation: on a device the group takes device tensors (NCCL, or the staged
// communicator). Owns its permutation scratch; not thread-safe.
#pragma once

#include <memory>

#include "core/comm/communicator.h"
#include "core/device_backend.h"
#include "core/tensor.h"

namespace tessel {

class TpContext {
 public:
  TpContext() = default;  // no tensor parallelism
  // group: the ranks sharing each layer (its size is tp); B, T, C: the micro-batch shape.
  // kv_heads < tp: consecutive ranks share a key/value head, and a sub-group of each such
  // set of ranks is split off (collective over `group`). The residual stream lives on `device`
  // (null: the CPU) in `values`; the sequence-parallel scratch is made there.
  TpContext(Communicator* group, bool sequence_parallel, int64_t B, int64_t T, int64_t C, int64_t kv_heads = 0,
            DeviceBackend* device = nullptr, DType values = DType::F32);
  TpContext(const TpContext&) = delete;
  TpContext& operator=(const TpContext&) = delete;

  int rank() const { return group_ ? group_->rank() : 0; }
  int size() const { return group_ ? group_->size() : 1; }
  bool sequence_parallel() const { return sequence_parallel_ && size() > 1; }
  Communicator* group() const { return group_; }
  // Rows of the residual stream this rank holds: B·T, or B·T/tp with sequence parallelism.
  int64_t local_rows() const { return sequence_parallel() ? B_ * T_ / size() : B_ * T_; }

  // x (rows, width) := Σ over the group (no-op alone).
  void all_reduce(const Tensor& x) const;
  // x := Σ over the ranks sharing this rank's key/value head (no-op when none do).
  void all_reduce_kv(const Tensor& x) const;
  // Ranks sharing a key/value head (1: heads are split, not shared).
  int kv_replicas() const { return kv_replicas_; }
  // full (B·T, C) partial sums → local (local_rows, C): all-reduce into local (which is full)
  // without sequence parallelism, else reduce-scatter along T.
  void reduce_to_local(const Tensor& full, const Tensor& local);
  // local (local_rows, C) → full (B·T, C): a copy without sequence parallelism, else all-gather
  // along T.
  void gather_to_full(const Tensor& local, const Tensor& full);

 private:
  // Copies between the sequence's order (b, t) and the rank-major staging order, either way.
  void permute(const Tensor& seq_major, const Tensor& rank_major, bool to_rank_major) const;

  Communicator* group_ = nullptr;
  bool sequence_parallel_ = false;
  int64_t B_ = 0, T_ = 0, C_ = 0;
  int kv_replicas_ = 1;
  std::unique_ptr<Communicator> kv_group_;
  Tensor scratch_;  // (B·T, C): rank-major staging for the sequence collectives
};

}  // namespace tessel

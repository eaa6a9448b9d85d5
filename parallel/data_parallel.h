// DataParallel: gradient reduction across a data-parallel group, overlapped with backward, and
// the ZeRO partition of the optimizer.
//
// The flat gradient buffer is cut into buckets of about parallel.bucket_mb, from the end of the
// buffer down, because backward produces gradients from the last layer to the first (see
// Transformer::set_grad_ready_hook). On the step's last micro-batch each bucket's reduction
// starts as soon as backward has moved past it, and runs on the communicator's progress thread
// while backward continues; finish_gradient_sync() waits for the rest. Earlier micro-batches
// only accumulate locally (gradient accumulation without communication).
//
// ZeRO (Rajbhandari et al.), partitioned per bucket as Megatron's distributed optimizer does: rank
// r owns the r-th 1/dp of every bucket, so reduce-scatter and all-gather move equal blocks.
//   zero 0  all-reduce (average) every bucket; every rank updates every parameter.
//   zero 1  all-reduce; each rank updates its shard (AdamW moments only for it), then the
//           parameters are all-gathered.
//   zero 2  reduce-scatter instead of all-reduce: each rank receives only its shard's averaged
//           gradient (shard_grads()), then as zero 1.
// On the CPU the parameters are fp32 and are their own master weights, so the shard's state is
// the two AdamW moments. The range's length must be a multiple of bucket_multiple(dp).
//
// A DataParallel covers one range of the store's buffers: all of it, or, under expert
// parallelism, either the replicated parameters (over the data-parallel group) or the routed
// experts' region (over the expert-data-parallel group: the ranks that hold the same experts).
// Its optimizer state, shard or not, is laid out for its range alone. Not thread-safe; every
// rank of the group calls the same methods in the same order.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "core/comm/communicator.h"
#include "core/config/values.h"
#include "core/model/parameters.h"
#include "optim/adamw.h"

namespace tessel {

struct GradBucket {
  int64_t begin = 0;  // flat offsets [begin, end)
  int64_t end = 0;
};

// Bucket sizes and shard boundaries are multiples of this, so every shard starts 16-aligned.
inline int64_t bucket_multiple(int dp) { return 16 * static_cast<int64_t>(dp); }

// Buckets over [0, numel) from the end down, each of about bucket_elems rounded up to a
// multiple of `multiple`; the last starts at 0. numel must be a multiple of `multiple`.
std::vector<GradBucket> make_grad_buckets(int64_t numel, int64_t bucket_elems, int64_t multiple);

// The AdamW segments of rank `rank`'s shards (of dp) of `buckets`: each parameter's part of
// each shard with its weight decay (`weight_decay` where the parameter decays, else 0). Moments
// are packed shard after shard in bucket order (state_offset); the gradient is read at the
// parameter's offset, or, when grads_in_shard, at the state offset (ZeRO-2's shard buffer).
// entry_of, when given, receives the index in `entries` of each segment's parameter.
std::vector<AdamWSegment> zero_shard_segments(const std::vector<ParamEntry>& entries,
                                              const std::vector<GradBucket>& buckets, int dp, int rank,
                                              double weight_decay, bool grads_in_shard,
                                              std::vector<size_t>* entry_of = nullptr);

class DataParallel {
 public:
  // overlap: start buckets during backward (else all after it, in finish_gradient_sync).
  // reduce: how the replicas' gradients combine: kAvg (each replica's is a mean over equal
  // shares of the batch) or kSum (each is already weighted by its share of the tokens).
  // range: the flat elements [begin, end) this group reduces (default: the whole store), a
  // multiple of bucket_multiple(group size) long. grad_scale multiplies the reduced gradient
  // (host buffers only): 1 / ep for routed experts, whose local gradient sums ep replicas' tokens.
  DataParallel(Communicator& group, ParameterStore& store, double bucket_mb, ZeroStage zero, bool overlap = true,
               ReduceOp reduce = ReduceOp::kAvg, GradBucket range = {0, -1}, double grad_scale = 1.0);

  int size() const { return group_.size(); }
  int rank() const { return group_.rank(); }
  ZeroStage zero() const { return zero_; }
  const std::vector<GradBucket>& buckets() const { return buckets_; }
  const GradBucket& range() const { return range_; }

  // Before each micro-batch's forward/backward; `sync`: the step's last micro-batch, whose
  // backward reduces the accumulated gradients.
  void begin_micro_batch(bool sync);
  // The model's gradient-ready hook: every gradient at offsets >= offset is final.
  void grads_ready_from(int64_t offset);
  // Starts the reductions not started yet and waits for all of them.
  void finish_gradient_sync();
  // Seconds finish_gradient_sync() spent waiting in the last step: communication not hidden
  // behind backward.
  double exposed_wait_s() const { return exposed_wait_s_; }

  // Elements of the optimizer state on this rank: the range's at zero 0, a 1/dp shard else.
  int64_t state_numel() const;
  // The AdamW segments this rank updates (state offsets within this group's state), and the
  // gradient buffer they read.
  std::vector<AdamWSegment> optimizer_segments(double weight_decay) const;
  const Tensor& optimizer_grads() const;  // F32 (state_numel or the store's numel)
  // Σ g² of the reduced gradient over the range's parameters whose `counted` flag (by entry
  // index) is set, over the whole data-parallel group: identical on every rank of it. Empty
  // `counted`: every parameter. (Tensor parallelism counts a replicated parameter on one
  // rank only, then sums over its own group.)
  double grad_sum_of_squares(const std::vector<bool>& counted = {});
  // zero >= 1: every rank's updated shard into everyone's parameters (all-gather per bucket).
  void gather_params();

  // Optimizer state from the full form (the store's numel, laid out like the parameters, as a
  // checkpoint is read) into this group's form (state_numel). Checkpoints are written from the
  // shards themselves (TrainStep::state_segments).
  void state_from_full(const Tensor& full, const Tensor& shard) const;

 private:
  void start_bucket(size_t b);
  int64_t shard_offset(size_t b) const;  // first element of bucket b's shard in the packed state

  Communicator& group_;
  ParameterStore& store_;
  ZeroStage zero_;
  bool overlap_;
  ReduceOp reduce_;
  GradBucket range_;
  double grad_scale_;
  std::vector<GradBucket> buckets_;
  std::vector<std::shared_ptr<Work>> works_;  // per bucket, this step
  size_t next_bucket_ = 0;                    // buckets [0, next_bucket_) are started
  bool sync_ = false;
  Tensor shard_grads_;                        // zero 2: (state_numel)
  std::vector<AdamWSegment> shard_segments_;  // zero 2: this rank's shard by parameter
  std::vector<size_t> shard_entry_of_;        // ... and the parameter of each segment
  double exposed_wait_s_ = 0;
};

}  // namespace tessel

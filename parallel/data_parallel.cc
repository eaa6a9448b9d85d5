#include "parallel/data_parallel.h"

#include "core/device_backend.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "optim/grad_clip.h"

namespace tessel {

std::vector<GradBucket> make_grad_buckets(int64_t numel, int64_t bucket_elems, int64_t multiple) {
  TESSEL_CHECK(multiple >= 1 && numel % multiple == 0)
      << "gradient buffer of " << numel << " elements is not a multiple of " << multiple;
  const int64_t size = std::max<int64_t>(multiple, (bucket_elems + multiple - 1) / multiple * multiple);
  std::vector<GradBucket> buckets;
  for (int64_t end = numel; end > 0;) {
    const int64_t begin = std::max<int64_t>(0, end - size);
    buckets.push_back({begin, end});
    end = begin;
  }
  return buckets;
}

std::vector<AdamWSegment> zero_shard_segments(const std::vector<ParamEntry>& entries,
                                              const std::vector<GradBucket>& buckets, int dp, int rank,
                                              double weight_decay, bool grads_in_shard, std::vector<size_t>* entry_of) {
  std::vector<AdamWSegment> segments;
  int64_t packed = 0;
  for (const GradBucket& b : buckets) {
    const int64_t s = (b.end - b.begin) / dp;
    const int64_t lo = b.begin + rank * s, hi = lo + s;
    for (size_t k = 0; k < entries.size(); ++k) {
      const ParamEntry& e = entries[k];
      const int64_t from = std::max(lo, e.offset), to = std::min(hi, e.offset + e.numel);
      if (from >= to) continue;
      AdamWSegment seg;
      seg.offset = from;
      seg.numel = to - from;
      seg.weight_decay = e.spec.weight_decay ? weight_decay : 0.0;
      seg.state_offset = packed + (from - lo);
      seg.grad_offset = grads_in_shard ? seg.state_offset : from;
      segments.push_back(seg);
      if (entry_of != nullptr) entry_of->push_back(k);
    }
    packed += s;
  }
  return segments;
}

DataParallel::DataParallel(Communicator& group, ParameterStore& store, double bucket_mb, ZeroStage zero, bool overlap,
                           ReduceOp reduce, GradBucket range, double grad_scale)
    : group_(group),
      store_(store),
      zero_(zero),
      overlap_(overlap),
      reduce_(reduce),
      range_(range.end < 0 ? GradBucket{range.begin, store.numel()} : range),
      grad_scale_(grad_scale) {
  TESSEL_CHECK(range_.begin >= 0 && range_.begin <= range_.end && range_.end <= store.numel())
      << "DataParallel: range [" << range_.begin << ", " << range_.end << ") outside the store's " << store.numel()
      << " elements";
  TESSEL_CHECK(grad_scale_ == 1.0 || store.grads().device().is_cpu())
      << "DataParallel: a gradient scale applies to host buffers only";
  const int64_t elems = static_cast<int64_t>(bucket_mb * 1024 * 1024 / sizeof(float));
  buckets_ = make_grad_buckets(range_.end - range_.begin, elems, bucket_multiple(group.size()));
  for (GradBucket& b : buckets_) b.begin += range_.begin, b.end += range_.begin;
  works_.resize(buckets_.size());
  if (zero_ == ZeroStage::k2) {
    // Beside the gradients: on their device when they have one.
    DeviceBackend* device = store.grads().storage()->backend();
    shard_grads_ = zeros_on(device, {state_numel()}, DType::F32);
    shard_segments_ = zero_shard_segments(store.entries(), buckets_, size(), rank(), 0.0, true, &shard_entry_of_);
  }
}

int64_t DataParallel::state_numel() const {
  const int64_t n = range_.end - range_.begin;
  return zero_ == ZeroStage::k0 ? n : n / size();
}

int64_t DataParallel::shard_offset(size_t b) const {
  int64_t packed = 0;
  for (size_t i = 0; i < b; ++i) packed += (buckets_[i].end - buckets_[i].begin) / size();
  return packed;
}

void DataParallel::begin_micro_batch(bool sync) {
  sync_ = sync;
  if (sync) {
    next_bucket_ = 0;
    std::fill(works_.begin(), works_.end(), nullptr);
  }
}

void DataParallel::start_bucket(size_t b) {
  const GradBucket& bucket = buckets_[b];
  const Tensor grads = store_.grads().slice(bucket.begin, bucket.end);
  if (zero_ == ZeroStage::k2) {
    const int64_t s = (bucket.end - bucket.begin) / size();
    works_[b] = group_.reduce_scatter_async(grads, shard_grads_.slice(shard_offset(b), shard_offset(b) + s), reduce_);
  } else {
    works_[b] = group_.all_reduce_async(grads, reduce_);
  }
}

void DataParallel::grads_ready_from(int64_t offset) {
  if (!sync_ || !overlap_ || size() == 1) return;
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].begin >= offset) start_bucket(next_bucket_++);
}

void DataParallel::finish_gradient_sync() {
  exposed_wait_s_ = 0;
  if (size() > 1) {
    while (next_bucket_ < buckets_.size()) start_bucket(next_bucket_++);
    const auto t0 = std::chrono::steady_clock::now();
    for (const std::shared_ptr<Work>& w : works_) w->wait();
    exposed_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (grad_scale_ != 1.0) {
    // What this rank's update reads: its ZeRO-2 shard, or the range.
    const Tensor g = zero_ == ZeroStage::k2 ? shard_grads_ : store_.grads().slice(range_.begin, range_.end);
    float* p = g.data<float>();
    const float k = static_cast<float>(grad_scale_);
    for (int64_t i = 0; i < g.numel(); ++i) p[i] *= k;
  }
}

std::vector<AdamWSegment> DataParallel::optimizer_segments(double weight_decay) const {
  if (zero_ == ZeroStage::k0) {
    std::vector<AdamWSegment> segments;
    for (const ParamEntry& e : store_.entries()) {
      if (e.offset < range_.begin || e.offset >= range_.end) continue;
      segments.push_back({e.offset, e.numel, e.spec.weight_decay ? weight_decay : 0.0, -1, e.offset - range_.begin});
    }
    return segments;
  }
  return zero_shard_segments(store_.entries(), buckets_, size(), rank(), weight_decay, zero_ == ZeroStage::k2);
}

const Tensor& DataParallel::optimizer_grads() const { return zero_ == ZeroStage::k2 ? shard_grads_ : store_.grads(); }

double DataParallel::grad_sum_of_squares(const std::vector<bool>& counted) {
  const bool all = counted.empty();
  if (zero_ < ZeroStage::k2) {
    // The counted parameters' views, reduced together: on a device one wait for all of them.
    if (all) return sum_of_squares(store_.grads().slice(range_.begin, range_.end));
    std::vector<Tensor> pieces;
    const std::vector<ParamEntry>& entries = store_.entries();
    for (size_t k = 0; k < entries.size(); ++k) {
      const bool inside = entries[k].offset >= range_.begin && entries[k].offset < range_.end;
      if (counted[k] && inside) pieces.push_back(store_.grads().view(entries[k].offset, {entries[k].numel}));
    }
    return sum_of_squares(pieces);
  }
  double sum = 0;
  if (all) {
    sum = sum_of_squares(shard_grads_);
  } else {
    std::vector<Tensor> pieces;
    for (size_t s = 0; s < shard_segments_.size(); ++s) {
      if (counted[shard_entry_of_[s]])
        pieces.push_back(shard_grads_.view(shard_segments_[s].grad_offset, {shard_segments_[s].numel}));
    }
    sum = sum_of_squares(pieces);
  }
  group_.all_reduce_doubles(&sum, 1, ReduceOp::kSum);
  return sum;
}

void DataParallel::gather_params() {
  if (zero_ == ZeroStage::k0 || size() == 1) return;
  std::vector<std::shared_ptr<Work>> works;
  for (const GradBucket& b : buckets_) {
    const int64_t s = (b.end - b.begin) / size();
    const Tensor all = store_.params().slice(b.begin, b.end);
    works.push_back(group_.all_gather_async(all.slice(rank() * s, (rank() + 1) * s), all));
  }
  for (const std::shared_ptr<Work>& w : works) w->wait();
}

void DataParallel::state_from_full(const Tensor& full, const Tensor& shard) const {
  if (zero_ == ZeroStage::k0) {
    const Tensor mine = full.slice(range_.begin, range_.end);
    if (shard.raw() != mine.raw()) shard.copy_from(mine);
    return;
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const int64_t s = (buckets_[b].end - buckets_[b].begin) / size();
    const int64_t lo = buckets_[b].begin + rank() * s;
    shard.slice(shard_offset(b), shard_offset(b) + s).copy_from(full.slice(lo, lo + s));
  }
}

}  // namespace tessel

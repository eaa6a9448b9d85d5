#include "core/model/parameters.h"

#include <algorithm>

#include "core/device_backend.h"
#include "core/model/shard.h"

#include "core/model/init_rng.h"

namespace tessel {

float initial_value(uint64_t seed, const ParamSpec& spec, int64_t index) {
  switch (spec.init) {
    case InitKind::kOnes: return 1.0f;
    case InitKind::kZeros: return 0.0f;
    case InitKind::kNormal: return spec.init_std * normal_at(seed, spec.name, static_cast<uint64_t>(index));
  }
  return 0.0f;
}

ParameterStore::ParameterStore(std::vector<ParamSpec> specs, int64_t total_multiple, int tp_rank, int tp_size,
                               DeviceBackend* device, DType compute, int64_t expert_multiple)
    : tp_rank_(tp_rank), tp_size_(tp_size), compute_dtype_(compute) {
  TESSEL_CHECK(compute == DType::F32 || ((compute == DType::BF16 || compute == DType::F16) && device != nullptr))
      << "ParameterStore: compute type " << dtype_name(compute) << (device == nullptr ? " on the CPU" : "")
      << "; the CPU computes in F32, a device in F32, BF16 or F16";
  TESSEL_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size)
      << "ParameterStore: tensor-parallel rank " << tp_rank << " of " << tp_size;
  TESSEL_CHECK(total_multiple >= 1 && expert_multiple >= 0)
      << "ParameterStore: total_multiple must be positive and expert_multiple not negative, got " << total_multiple
      << " and " << expert_multiple;
  // An expert region: the routed experts after the rest, each part in its given order.
  if (expert_multiple > 0) {
    std::stable_partition(specs.begin(), specs.end(), [](const ParamSpec& s) { return s.expert < 0; });
  }
  const auto round_up = [](int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; };
  // Each parameter starts on a 16-element boundary so vectorized loops over one parameter
  // start aligned; the padding is zero and never read as a parameter.
  constexpr int64_t kAlign = 16;
  bool in_experts = false;
  for (auto& spec : specs) {
    TESSEL_CHECK(index_.count(spec.name) == 0) << "parameter '" << spec.name << "' declared twice";
    if (expert_multiple > 0 && spec.expert >= 0 && !in_experts) {
      numel_ = round_up(numel_, total_multiple);
      expert_begin_ = numel_;
      in_experts = true;
    }
    ParamEntry e;
    e.shape = local_shape(spec, tp_size);
    e.numel = shape_numel(e.shape);
    e.offset = numel_;
    e.spec = std::move(spec);
    numel_ += round_up(e.numel, kAlign);
    index_[e.spec.name] = entries_.size();
    entries_.push_back(std::move(e));
  }
  if (in_experts) {
    numel_ = expert_begin_ + round_up(numel_ - expert_begin_, expert_multiple);
  } else {
    numel_ = round_up(numel_, total_multiple);
    expert_begin_ = numel_;
  }
  params_ = zeros_on(device, {numel_}, DType::F32);
  grads_ = zeros_on(device, {numel_}, DType::F32);
  if (compute != DType::F32) compute_params_ = zeros_on(device, {numel_}, compute);
}

Tensor ParameterStore::compute_param(const std::string& name) const {
  if (!compute_params_.defined()) return param(name);
  const ParamEntry& e = entry(name);
  return compute_params_.view(e.offset, e.shape);
}

void ParameterStore::sync_compute_params() {
  if (!compute_params_.defined()) return;
  params_.storage()->backend()->cast(compute_params_, params_);
}

const ParamEntry& ParameterStore::entry(const std::string& name) const {
  auto it = index_.find(name);
  TESSEL_CHECK(it != index_.end()) << "no parameter named '" << name << "'";
  return entries_[it->second];
}

Tensor ParameterStore::param(const std::string& name) const {
  const ParamEntry& e = entry(name);
  return params_.view(e.offset, e.shape);
}

Tensor ParameterStore::grad(const std::string& name) const {
  const ParamEntry& e = entry(name);
  return grads_.view(e.offset, e.shape);
}

void ParameterStore::initialize(uint64_t seed) {
  const bool on_host = params_.device().is_cpu();
  const Tensor host = on_host ? params_ : Tensor::zeros({numel_}, DType::F32);
  float* p = host.data<float>();
  for (const ParamEntry& e : entries_) {
    const uint64_t name_hash = fnv1a64(e.spec.name);
    const std::vector<ShardRun> runs = shard_runs(e.spec, tp_rank_, tp_size_);
    // Each run fills its own elements: in parallel over the runs of a column shard (many short
    // runs), or within the one run of a whole or row-split parameter.
    const bool over_runs = runs.size() > 1;
#pragma omp parallel for schedule(static) if (over_runs)
    for (size_t r = 0; r < runs.size(); ++r) {
      const ShardRun& run = runs[r];
      float* dst = p + e.offset + run.local;
      if (e.spec.init != InitKind::kNormal) {
        for (int64_t i = 0; i < run.length; ++i) dst[i] = initial_value(seed, e.spec, run.global + i);
        continue;
      }
      // Normals come four per counter block of the global index: blocks overlapping the run.
      const int64_t first = run.global / 4, last = (run.global + run.length + 3) / 4;
#pragma omp parallel for schedule(static) if (!over_runs)
      for (int64_t k = first; k < last; ++k) {
        float four[4];
        normals_at4(seed, name_hash, static_cast<uint64_t>(k), four);
        for (int64_t j = 0; j < 4; ++j) {
          const int64_t g = 4 * k + j;
          if (g >= run.global && g < run.global + run.length) dst[g - run.global] = e.spec.init_std * four[j];
        }
      }
    }
  }
  if (!on_host) params_.copy_from(host);
  sync_compute_params();
}

void ParameterStore::zero_grads() { grads_.fill_zero(); }

}  // namespace tessel

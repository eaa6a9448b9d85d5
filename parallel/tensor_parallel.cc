#include "parallel/tensor_parallel.h"

#include <cstring>

#include "core/error.h"
#include "core/model/shard.h"

namespace tessel {

void gather_shards(const ParameterStore& local, const Tensor& local_values, const ParameterStore& full,
                   const Tensor& full_values, Communicator* tp) {
  TESSEL_CHECK(full.tp_size() == 1) << "gather_shards: the full store must not be sharded";
  full_values.fill_zero();
  const float* src = local_values.data<float>();
  float* dst = full_values.data<float>();
  for (const ParamEntry& e : local.entries()) {
    // One copy of values several ranks hold (replicated, or a shared key/value head).
    if (local.tp_rank() % shard_replicas(e.spec, local.tp_size()) != 0) continue;
    const int64_t base = full.entry(e.spec.name).offset;
    for (const ShardRun& run : shard_runs(e.spec, local.tp_rank(), local.tp_size())) {
      std::memcpy(dst + base + run.global, src + e.offset + run.local, static_cast<size_t>(run.length) * sizeof(float));
    }
  }
  // Parameter by parameter: each stays within MPI's element count, whatever the model's size.
  if (tp != nullptr && tp->size() > 1) {
    for (const ParamEntry& e : full.entries()) tp->all_reduce(full_values.view(e.offset, {e.numel}), ReduceOp::kSum);
  }
}

void scatter_shards(const ParameterStore& full, const Tensor& full_values, const ParameterStore& local,
                    const Tensor& local_values) {
  const float* src = full_values.data<float>();
  float* dst = local_values.data<float>();
  for (const ParamEntry& e : local.entries()) {
    const int64_t base = full.entry(e.spec.name).offset;
    for (const ShardRun& run : shard_runs(e.spec, local.tp_rank(), local.tp_size())) {
      std::memcpy(dst + e.offset + run.local, src + base + run.global, static_cast<size_t>(run.length) * sizeof(float));
    }
  }
}

}  // namespace tessel

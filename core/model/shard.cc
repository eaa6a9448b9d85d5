#include "core/model/shard.h"

#include "core/error.h"

namespace tessel {
namespace {

std::vector<int64_t> groups_of(const ParamSpec& spec) {
  if (spec.shard_groups.empty()) return {spec.shape[static_cast<size_t>(spec.shard_dim)]};
  int64_t total = 0;
  for (int64_t g : spec.shard_groups) total += g;
  TESSEL_CHECK(total == spec.shape[static_cast<size_t>(spec.shard_dim)])
      << "parameter '" << spec.name << "': shard groups sum to " << total << ", dimension " << spec.shard_dim << " is "
      << spec.shape[static_cast<size_t>(spec.shard_dim)];
  return spec.shard_groups;
}

// The parts the dimension is cut into: tp, or fewer when there are fewer heads than ranks.
int64_t parts_of(const ParamSpec& spec, int tp_size) {
  if (spec.shard_heads > 0 && spec.shard_heads < tp_size) {
    TESSEL_CHECK(tp_size % spec.shard_heads == 0 && spec.shard_groups.empty())
        << "parameter '" << spec.name << "': " << spec.shard_heads << " heads cannot be shared by " << tp_size
        << " tensor-parallel ranks";
    return spec.shard_heads;
  }
  return tp_size;
}

}  // namespace

int shard_replicas(const ParamSpec& spec, int tp_size) {
  if (spec.shard_dim < 0) return tp_size;
  return static_cast<int>(tp_size / parts_of(spec, tp_size));
}

Shape local_shape(const ParamSpec& spec, int tp_size) {
  if (spec.shard_dim < 0 || tp_size == 1) return spec.shape;
  const int64_t parts = parts_of(spec, tp_size);
  if (parts < tp_size) {
    Shape s = spec.shape;
    s[static_cast<size_t>(spec.shard_dim)] /= parts;
    return s;
  }
  for (int64_t g : groups_of(spec)) {
    TESSEL_CHECK(g % tp_size == 0) << "parameter '" << spec.name << "': a group of " << g << " along dimension "
                                   << spec.shard_dim << " does not split over " << tp_size << " tensor-parallel ranks";
  }
  Shape s = spec.shape;
  s[static_cast<size_t>(spec.shard_dim)] /= tp_size;
  return s;
}

std::vector<ShardRun> shard_runs(const ParamSpec& spec, int tp_rank, int tp_size) {
  const int64_t numel = shape_numel(spec.shape);
  if (spec.shard_dim < 0 || tp_size == 1) return {{0, 0, numel}};
  const size_t d = static_cast<size_t>(spec.shard_dim);
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < d; ++i) outer *= spec.shape[i];
  for (size_t i = d + 1; i < spec.shape.size(); ++i) inner *= spec.shape[i];
  const std::vector<int64_t> groups = groups_of(spec);
  const int64_t global_dim = spec.shape[d], local_dim = local_shape(spec, tp_size)[d];
  // With fewer heads than ranks, consecutive ranks share a head: part = rank / replicas.
  const int64_t parts = parts_of(spec, tp_size);
  const int64_t part = tp_rank / (tp_size / parts);
  std::vector<ShardRun> runs;
  for (int64_t o = 0; o < outer; ++o) {
    int64_t global_start = 0, local_start = 0;
    for (int64_t g : groups) {
      const int64_t size = g / parts;
      runs.push_back(
          {(o * local_dim + local_start) * inner, (o * global_dim + global_start + part * size) * inner, size * inner});
      global_start += g;
      local_start += size;
    }
  }
  return runs;
}

}  // namespace tessel

// How tensor parallelism splits a parameter: which elements of the global tensor a rank holds.
//
// A parameter's shard spec (ParamSpec::shard_dim, shard_groups) names the dimension TP splits,
// or none. The dimension may be made of groups that are split one by one: GPT-2's fused
// c_attn columns are [q | k | v] (groups H·D, KV·D, KV·D), so a rank holds its heads of each
// — [q_r | k_r | v_r] — exactly the layout one rank's attention reads. Row-major throughout.
// A local tensor maps onto the global one as runs of consecutive elements; everything that
// moves between the two (initialization, gathering for checkpoints, reading them back) walks
// the runs. Pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/parameters.h"

namespace tessel {

// Consecutive local elements [local, local + length) are the global elements
// [global, global + length).
struct ShardRun {
  int64_t local = 0;
  int64_t global = 0;
  int64_t length = 0;
};

// How many ranks of the group hold the same part of the parameter: 1 for a split parameter,
// tp / shard_heads for key/value heads fewer than the ranks, tp for a replicated parameter.
int shard_replicas(const ParamSpec& spec, int tp_size);
// The shape rank r of `tp_size` holds. Throws when a group does not split evenly.
Shape local_shape(const ParamSpec& spec, int tp_size);
// The runs of rank `tp_rank`, covering its local tensor in order. A replicated parameter is
// one run of everything.
std::vector<ShardRun> shard_runs(const ParamSpec& spec, int tp_rank, int tp_size);

}  // namespace tessel

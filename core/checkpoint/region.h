// Region: the part of a global tensor one checkpoint piece holds, and moving values between a
// piece and a rank's tensor-parallel shard.
//
// A region is a box of the global tensor (start and end per dimension) and a range of the
// box's elements in row-major order: the whole box for weights, a part of it for a piece cut
// from a ZeRO-flattened optimizer shard. A rank's shard of a parameter is one box per group of
// its split dimension (core/model/shard.h), so any range of the shard's elements is one range
// per box. Saving cuts a rank's values into regions; loading copies every region's overlap
// with the loading rank's shard, whatever layout saved it. Pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/shard.h"

namespace tessel {

struct Region {
  Shape box_start, box_end;  // per dimension, [start, end)
  int64_t flat_begin = 0;    // elements [flat_begin, flat_end) of the box, row-major
  int64_t flat_end = 0;
  int64_t numel() const { return flat_end - flat_begin; }
  int64_t box_numel() const;
};

// The regions that hold elements [local_begin, local_end) (row-major) of rank tp_rank's shard
// of `spec`, one per shard box the range touches.
std::vector<Region> shard_regions(const ParamSpec& spec, int tp_rank, int tp_size, int64_t local_begin,
                                  int64_t local_end);

// The global elements of a region as runs: ShardRun::local is the position within the region
// (0 .. numel), ShardRun::global the index in the global tensor; in increasing global order.
std::vector<ShardRun> region_runs(const Region& region, const Shape& global_shape);

// out := the region's elements, in its order, taken from rank tp_rank's local values of `spec`
// (the region must lie inside the rank's shard).
void gather_region(const Region& region, const ParamSpec& spec, int tp_rank, int tp_size, const float* local,
                   float* out);

// Copies the elements a stored region (values in its order) shares with rank tp_rank's shard
// of `spec` into the rank's local values; returns how many it copied.
int64_t copy_overlap(const Region& region, const float* values, const ParamSpec& spec, int tp_rank, int tp_size,
                     float* local);

// Where a region's elements start in rank tp_rank's local tensor when they are one contiguous
// run of it (in order), else -1.
int64_t contiguous_local_start(const Region& region, const ParamSpec& spec, int tp_rank, int tp_size);

// Whether two boxes share an element.
bool boxes_overlap(const Region& a, const Region& b);

}  // namespace tessel

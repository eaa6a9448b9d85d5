#include "core/checkpoint/region.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tessel {

int64_t Region::box_numel() const {
  int64_t n = 1;
  for (size_t i = 0; i < box_start.size(); ++i) n *= box_end[i] - box_start[i];
  return n;
}

std::vector<Region> shard_regions(const ParamSpec& spec, int tp_rank, int tp_size, int64_t local_begin,
                                  int64_t local_end) {
  const Shape& shape = spec.shape;
  std::vector<Region> out;
  if (local_end <= local_begin) return out;
  if (spec.shard_dim < 0 || tp_size == 1) {
    out.push_back({Shape(shape.size(), 0), shape, local_begin, local_end});
    return out;
  }
  // One box per group of the split dimension: the runs of one group, one per outer index, are
  // the box's rows of its part of that dimension.
  const size_t d = static_cast<size_t>(spec.shard_dim);
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < d; ++i) outer *= shape[i];
  for (size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
  const std::vector<ShardRun> runs = shard_runs(spec, tp_rank, tp_size);
  const size_t groups = runs.size() / static_cast<size_t>(outer);
  const int64_t local_dim = local_shape(spec, tp_size)[d];
  const int64_t global_dim = shape[d];
  for (size_t g = 0; g < groups; ++g) {
    const ShardRun& first = runs[g];                  // outer index 0
    const int64_t size = first.length / inner;        // the group's extent on this rank
    const int64_t local_start = first.local / inner;  // along d, in the local tensor
    const int64_t global_start = first.global / inner % global_dim;
    // Elements of this box among the local elements before x (they come in box order).
    auto below = [&](int64_t x) {
      const int64_t row = local_dim * inner, o = x / row, rem = x % row;
      return o * size * inner + std::clamp<int64_t>(rem - local_start * inner, 0, size * inner);
    };
    const int64_t begin = below(local_begin), end = below(local_end);
    if (end <= begin) continue;
    Region r{Shape(shape.size(), 0), shape, begin, end};
    r.box_start[d] = global_start;
    r.box_end[d] = global_start + size;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<ShardRun> region_runs(const Region& region, const Shape& global_shape) {
  const size_t n = global_shape.size();
  TESSEL_CHECK(region.box_start.size() == n && region.box_end.size() == n)
      << "region of " << region.box_start.size() << " dimensions in a tensor of " << n;
  std::vector<ShardRun> runs;
  if (region.numel() <= 0) return runs;
  if (n == 0) return {{0, 0, 1}};
  std::vector<int64_t> stride(n, 1);
  for (size_t i = n - 1; i-- > 0;) stride[i] = stride[i + 1] * global_shape[i + 1];
  const int64_t width = region.box_end[n - 1] - region.box_start[n - 1];
  for (int64_t row = region.flat_begin / width; row * width < region.flat_end; ++row) {
    // The row's multi-index within the box, last dimension excluded.
    int64_t global = region.box_start[n - 1], rest = row;
    for (size_t i = n - 1; i-- > 0;) {
      const int64_t extent = region.box_end[i] - region.box_start[i];
      global += (region.box_start[i] + rest % extent) * stride[i];
      rest /= extent;
    }
    const int64_t lo = std::max(region.flat_begin, row * width), hi = std::min(region.flat_end, (row + 1) * width);
    const ShardRun run{lo - region.flat_begin, global + (lo - row * width), hi - lo};
    if (!runs.empty() && runs.back().local + runs.back().length == run.local &&
        runs.back().global + runs.back().length == run.global) {
      runs.back().length += run.length;  // whole rows of a box as wide as the tensor: one run
    } else {
      runs.push_back(run);
    }
  }
  return runs;
}

namespace {

// Calls fn(region position, local index, length) for every stretch of elements the region and
// rank tp_rank's shard share. Both run lists are in increasing global order.
template <typename Fn>
int64_t for_each_overlap(const Region& region, const ParamSpec& spec, int tp_rank, int tp_size, Fn fn) {
  const std::vector<ShardRun> a = region_runs(region, spec.shape);
  const std::vector<ShardRun> b = shard_runs(spec, tp_rank, tp_size);
  int64_t copied = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    const int64_t lo = std::max(a[i].global, b[j].global);
    const int64_t hi = std::min(a[i].global + a[i].length, b[j].global + b[j].length);
    if (lo < hi) {
      fn(a[i].local + (lo - a[i].global), b[j].local + (lo - b[j].global), hi - lo);
      copied += hi - lo;
    }
    if (a[i].global + a[i].length < b[j].global + b[j].length)
      ++i;
    else
      ++j;
  }
  return copied;
}

}  // namespace

void gather_region(const Region& region, const ParamSpec& spec, int tp_rank, int tp_size, const float* local,
                   float* out) {
  const int64_t n = for_each_overlap(region, spec, tp_rank, tp_size, [&](int64_t pos, int64_t idx, int64_t len) {
    std::memcpy(out + pos, local + idx, static_cast<size_t>(len) * sizeof(float));
  });
  TESSEL_CHECK(n == region.numel()) << "parameter '" << spec.name << "': region of " << region.numel()
                                    << " elements lies only partly (" << n << ") in tensor-parallel rank " << tp_rank
                                    << "'s shard";
}

int64_t copy_overlap(const Region& region, const float* values, const ParamSpec& spec, int tp_rank, int tp_size,
                     float* local) {
  return for_each_overlap(region, spec, tp_rank, tp_size, [&](int64_t pos, int64_t idx, int64_t len) {
    std::memcpy(local + idx, values + pos, static_cast<size_t>(len) * sizeof(float));
  });
}

int64_t contiguous_local_start(const Region& region, const ParamSpec& spec, int tp_rank, int tp_size) {
  int64_t start = -1, next = -1;
  bool contiguous = true;
  const int64_t n = for_each_overlap(region, spec, tp_rank, tp_size, [&](int64_t pos, int64_t idx, int64_t len) {
    if (start < 0) {
      start = idx - pos;
    } else if (idx != next || idx - pos != start) {
      contiguous = false;
    }
    next = idx + len;
  });
  return contiguous && n == region.numel() && start >= 0 ? start : -1;
}

bool boxes_overlap(const Region& a, const Region& b) {
  for (size_t i = 0; i < a.box_start.size(); ++i) {
    if (std::max(a.box_start[i], b.box_start[i]) >= std::min(a.box_end[i], b.box_end[i])) return false;
  }
  return true;
}

}  // namespace tessel

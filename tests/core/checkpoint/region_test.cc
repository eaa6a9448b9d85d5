// Regions: any layout's pieces, read back by any other layout, give every rank exactly its
// shard of the global tensor.
#include <catch2/catch.hpp>

#include <algorithm>

#include "core/checkpoint/region.h"

using namespace tessel;

namespace {

// Rank r's shard of a global tensor holding 0, 1, 2, ... (the element's own global index).
std::vector<float> shard_of(const ParamSpec& spec, int rank, int tp) {
  std::vector<float> local(static_cast<size_t>(shape_numel(local_shape(spec, tp))));
  for (const ShardRun& r : shard_runs(spec, rank, tp)) {
    for (int64_t i = 0; i < r.length; ++i) local[static_cast<size_t>(r.local + i)] = static_cast<float>(r.global + i);
  }
  return local;
}

}  // namespace

TEST_CASE("pieces saved by one tensor-parallel layout, in ZeRO-like ranges, load into any other", "[cpu][checkpoint]") {
  // GPT-2's fused c_attn ([in, out], columns q | k | v split one by one), a row-split weight, a
  // shared key/value head projection, and a replicated norm.
  const std::vector<ParamSpec> specs = {
      {"c_attn.weight", {6, 24}, 1, InitKind::kNormal, 1.0f, true, {8, 8, 8}},
      {"c_proj.weight", {8, 6}, 0, InitKind::kNormal, 1.0f, true},
      {"k_proj.weight", {4, 6}, 0, InitKind::kNormal, 1.0f, true, {}, 2},
      {"ln.weight", {6}, -1, InitKind::kOnes, 0, false},
  };
  for (const ParamSpec& spec : specs) {
    for (int save_tp : {1, 2, 4}) {
      // The savers cut their shards into 3 uneven ranges, as ZeRO shards do.
      std::vector<std::pair<Region, std::vector<float>>> pieces;
      int64_t stored = 0;
      for (int rank = 0; rank < save_tp; ++rank) {
        if (rank % shard_replicas(spec, save_tp) != 0) continue;  // held by another rank too
        const std::vector<float> local = shard_of(spec, rank, save_tp);
        const int64_t n = static_cast<int64_t>(local.size());
        const int64_t cut = std::min(n, n / 3 + 5);
        for (auto [a, b] : {std::pair<int64_t, int64_t>{0, n / 3}, {n / 3, cut}, {cut, n}}) {
          for (const Region& r : shard_regions(spec, rank, save_tp, a, b)) {
            std::vector<float> values(static_cast<size_t>(r.numel()));
            gather_region(r, spec, rank, save_tp, local.data(), values.data());
            stored += r.numel();
            pieces.emplace_back(r, std::move(values));
          }
        }
      }
      CHECK(stored == shape_numel(spec.shape));  // every element once
      for (int load_tp : {1, 2, 4}) {
        for (int rank = 0; rank < load_tp; ++rank) {
          INFO(spec.name << ": saved at tp " << save_tp << ", loaded by rank " << rank << " of tp " << load_tp);
          const std::vector<float> want = shard_of(spec, rank, load_tp);
          std::vector<float> got(want.size(), -1.0f);
          int64_t copied = 0;
          for (const auto& [region, values] : pieces) {
            copied += copy_overlap(region, values.data(), spec, rank, load_tp, got.data());
          }
          CHECK(copied == static_cast<int64_t>(want.size()));
          CHECK(got == want);
        }
      }
    }
  }
}

TEST_CASE("a region's runs walk its box row by row, merged where rows are contiguous", "[cpu][checkpoint]") {
  Region column{{0, 2}, {3, 4}, 1, 5};  // columns 2..3 of a 3 x 6 tensor, elements 1..4 of the box
  const std::vector<ShardRun> runs = region_runs(column, {3, 6});
  REQUIRE(runs.size() == 3);
  CHECK((runs[0].local == 0 && runs[0].global == 3 && runs[0].length == 1));
  CHECK((runs[1].local == 1 && runs[1].global == 8 && runs[1].length == 2));
  CHECK((runs[2].local == 3 && runs[2].global == 14 && runs[2].length == 1));
  Region rows{{1, 0}, {3, 6}, 0, 12};  // whole rows: one run
  const std::vector<ShardRun> one = region_runs(rows, {3, 6});
  REQUIRE(one.size() == 1);
  CHECK((one[0].global == 6 && one[0].length == 12));
}

TEST_CASE("a region is written in place only when it is one contiguous run of the shard", "[cpu][checkpoint]") {
  const ParamSpec rows{"c_proj.weight", {8, 6}, 0, InitKind::kNormal, 1.0f, true};
  const ParamSpec fused{"c_attn.weight", {6, 24}, 1, InitKind::kNormal, 1.0f, true, {8, 8, 8}};
  // Rank 1 of 2 holds rows 4..7 of c_proj: its elements 0..23, in order.
  const std::vector<Region> r = shard_regions(rows, 1, 2, 5, 20);
  REQUIRE(r.size() == 1);
  CHECK(contiguous_local_start(r[0], rows, 1, 2) == 5);
  // A c_attn shard is three column boxes whose rows interleave in the local tensor.
  const std::vector<Region> q = shard_regions(fused, 0, 2, 0, 6 * 12);
  REQUIRE(q.size() == 3);
  CHECK(contiguous_local_start(q[0], fused, 0, 2) == -1);
  // Unsplit, the whole tensor is one run.
  CHECK(contiguous_local_start(shard_regions(fused, 0, 1, 0, 144)[0], fused, 0, 1) == 0);
}

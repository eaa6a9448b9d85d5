// Bucket layout and ZeRO shard segments: pure functions, checked without MPI.
#include <catch2/catch.hpp>

#include <map>

#include "core/error.h"
#include "core/model/parameters.h"
#include "parallel/data_parallel.h"

using namespace tessel;

TEST_CASE("buckets tile the buffer from its end down in multiples", "[cpu][dp]") {
  const std::vector<GradBucket> b = make_grad_buckets(160, 50, 32);
  // 50 rounds up to 64: [96, 160), [32, 96), [0, 32).
  REQUIRE(b.size() == 3);
  CHECK(b[0].begin == 96);
  CHECK(b[0].end == 160);
  CHECK(b[1].begin == 32);
  CHECK(b[2].begin == 0);
  CHECK(b[2].end == 32);
  CHECK(make_grad_buckets(64, 1 << 20, 32).size() == 1);
  CHECK_THROWS_WITH(make_grad_buckets(100, 50, 32), Catch::Contains("not a multiple of 32"));
}

TEST_CASE("ZeRO shard segments cover every parameter element exactly once across ranks", "[cpu][dp]") {
  std::vector<ParamSpec> specs = {{"a", {37}, -1, InitKind::kNormal, 0.02f, true},
                                  {"b", {5, 9}, -1, InitKind::kOnes, 0, false},
                                  {"c", {100}, -1, InitKind::kNormal, 0.02f, true}};
  const int dp = 3;
  ParameterStore store(specs, bucket_multiple(dp));
  REQUIRE(store.numel() % bucket_multiple(dp) == 0);
  const std::vector<GradBucket> buckets = make_grad_buckets(store.numel(), 60, bucket_multiple(dp));
  std::map<int64_t, int> covered;
  for (bool in_shard : {false, true}) {
    covered.clear();
    for (int r = 0; r < dp; ++r) {
      int64_t state_end = 0;
      for (const AdamWSegment& s : zero_shard_segments(store.entries(), buckets, dp, r, 0.1, in_shard)) {
        for (int64_t i = 0; i < s.numel; ++i) ++covered[s.offset + i];
        CHECK(s.grad_offset == (in_shard ? s.state_offset : s.offset));
        // Decay follows the parameter the segment lies in.
        const bool in_b = s.offset >= store.entry("b").offset && s.offset < store.entry("b").offset + 45;
        CHECK(s.weight_decay == (in_b ? 0.0 : 0.1));
        state_end = std::max(state_end, s.state_offset + s.numel);
      }
      CHECK(state_end <= store.numel() / dp);  // moments fit in the rank's shard
    }
    int64_t total = 0;
    for (const ParamEntry& e : store.entries()) {
      for (int64_t i = 0; i < e.numel; ++i) CHECK(covered[e.offset + i] == 1);
      total += e.numel;
    }
    CHECK(static_cast<int64_t>(covered.size()) == total);  // and no padding element
  }
}

// The rank grid: coordinates, groups and stage neighbours for many shapes and orders, checked
// against properties that any correct grid must have.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "parallel/topology.h"

using namespace tessel;

TEST_CASE("default order puts tensor-parallel ranks next to each other", "[cpu][topology]") {
  GridShape shape;
  shape.tp = 2;
  shape.dp = 3;
  shape.pp = 2;
  // Ranks: tp fastest, then dp, then pp. Rank 7 = tp 1, dp 0, pp 1 (7 = 1 + 2·0 + 6·1).
  Topology t(shape, 7);
  CHECK(t.coord(Axis::kTp) == 1);
  CHECK(t.coord(Axis::kDp) == 0);
  CHECK(t.coord(Axis::kPp) == 1);
  CHECK(t.group(Axis::kTp) == std::vector<int>{6, 7});
  CHECK(t.group(Axis::kDp) == std::vector<int>{7, 9, 11});
  CHECK(t.group(Axis::kPp) == std::vector<int>{1, 7});
  CHECK(t.is_last_stage());
  CHECK_FALSE(t.is_first_stage());
  CHECK(t.prev_stage_rank() == 1);
  CHECK(t.next_stage_rank() == -1);
  CHECK(t.describe() == "tp 1/2 dp 0/3 pp 1/2");
}

TEST_CASE("grid invariants hold for many shapes and orders", "[cpu][topology]") {
  const std::vector<std::string> orders = {"tp-cp-dp-pp", "tp-cp-pp-dp", "dp-tp-cp-pp", "pp-dp-cp-tp"};
  for (int tp : {1, 2, 4}) {
    for (int dp : {1, 2, 3}) {
      for (int pp : {1, 2, 4}) {
        for (const std::string& order : orders) {
          GridShape shape;
          shape.tp = tp;
          shape.dp = dp;
          shape.pp = pp;
          const int world = shape.world_size();
          INFO("tp " << tp << " dp " << dp << " pp " << pp << " order " << order);
          std::set<Coords> seen;
          for (int r = 0; r < world; ++r) {
            Topology t(shape, r, order);
            CHECK(t.rank_of(t.coords()) == r);
            seen.insert(t.coords());
            for (Axis axis : {Axis::kTp, Axis::kDp, Axis::kPp}) {
              const std::vector<int> g = t.group(axis);
              REQUIRE(static_cast<int>(g.size()) == t.size(axis));
              CHECK(g[static_cast<size_t>(t.coord(axis))] == r);
              // Group members differ from this rank only on `axis`.
              for (size_t i = 0; i < g.size(); ++i) {
                Coords c = t.coords_of(g[i]);
                CHECK(c[static_cast<size_t>(axis)] == static_cast<int>(i));
                c[static_cast<size_t>(axis)] = t.coord(axis);
                CHECK(c == t.coords());
              }
              CHECK(t.group_color(axis) == g.front());
            }
            if (!t.is_last_stage()) CHECK(Topology(shape, t.next_stage_rank(), order).prev_stage_rank() == r);
          }
          CHECK(static_cast<int>(seen.size()) == world);  // coordinates are a bijection
          for (Axis axis : {Axis::kTp, Axis::kDp, Axis::kPp}) {
            std::vector<int> all;
            const auto groups = Topology(shape, 0, order).all_groups(axis);
            CHECK(static_cast<int>(groups.size()) == world / shape.size(axis));
            for (const auto& g : groups) all.insert(all.end(), g.begin(), g.end());
            std::sort(all.begin(), all.end());
            for (int r = 0; r < world; ++r) CHECK(all[static_cast<size_t>(r)] == r);  // a partition
          }
        }
      }
    }
  }
}

TEST_CASE("order tp innermost or dp innermost changes which ranks share a group", "[cpu][topology]") {
  GridShape shape;
  shape.tp = 2;
  shape.dp = 2;
  CHECK(Topology(shape, 0, "tp-cp-dp-pp").group(Axis::kTp) == std::vector<int>{0, 1});
  CHECK(Topology(shape, 0, "dp-cp-tp-pp").group(Axis::kTp) == std::vector<int>{0, 2});
  CHECK(Topology(shape, 0, "dp-cp-tp-pp").group(Axis::kDp) == std::vector<int>{0, 1});
}

TEST_CASE("from_config resolves dp auto and rejects a world that does not fit", "[cpu][topology]") {
  ParallelConfig p;
  p.tp = 2;
  p.pp = 2;
  CHECK(Topology::from_config(p, 8, 5).size(Axis::kDp) == 2);
  try {
    Topology::from_config(p, 6, 0);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("world size 6 is not divisible by parallel.tp (2) x parallel.pp (2)"));
  }
  p.dp = 3;
  try {
    Topology::from_config(p, 8, 0);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("does not match parallel.tp (2) x parallel.pp (2) x parallel.dp (3) = 12"));
    CHECK_THAT(e.what(), Catch::Contains("parallel.dp=auto"));
  }
  p.dp = 0;
  p.order = "tp-dp-pp";
  CHECK_THROWS_WITH(Topology::from_config(p, 8, 0), Catch::Contains("each once"));
}

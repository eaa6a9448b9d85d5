// The start-up handshake of a job's ranks (train/rank_placement.h): where each rank runs and
// which build it runs; different builds refuse to start, naming ranks and hosts.
#include <catch2/catch.hpp>

#include "tests/parallel/mpi_world.h"
#include "train/rank_placement.h"

using namespace tessel;

TEST_CASE("rank placement: hosts are described by their ranks, and different builds are refused with ranks and hosts",
          "[cpu]") {
  RankPlacement p;
  p.hosts = {"h1", "h1", "h2", "h2", "h1"};
  p.builds = std::vector<std::string>(5, "tessel 0.1.0 (aaa)");
  CHECK(p.describe() == "h1 (ranks 0-1, 4), h2 (ranks 2-3)");
  CHECK(p.ranks_on("h2") == "2-3");
  CHECK(p.ranks_on("h9").empty());
  CHECK_NOTHROW(check_same_build(p));
  p.builds[2] = p.builds[3] = "tessel 0.1.0 (bbb)";
  CHECK_THROWS_WITH(check_same_build(p), Catch::Contains("tessel 0.1.0 (aaa): ranks 0-1, 4 on h1") &&
                                             Catch::Contains("tessel 0.1.0 (bbb): ranks 2-3 on h2") &&
                                             Catch::Contains("same build at the same path"));
}

TEST_CASE("mpi: every rank learns every rank's host and build at start-up", "[mpi]") {
  MpiCommunicator& world = test_world();
  const int r = world.rank();
  const RankPlacement same = gather_rank_placement(world, "host" + std::to_string(r / 2), "tessel 0.1.0 (aaa)");
  REQUIRE(static_cast<int>(same.hosts.size()) == world.size());
  for (int q = 0; q < world.size(); ++q) CHECK(same.hosts[static_cast<size_t>(q)] == "host" + std::to_string(q / 2));
  CHECK_NOTHROW(check_same_build(same));
  if (world.size() < 2) return;
  // The last rank runs another build: every rank sees it, so all refuse alike.
  const bool odd = r == world.size() - 1;
  const RankPlacement mixed =
      gather_rank_placement(world, "host" + std::to_string(r / 2), odd ? "tessel 0.2.0 (bbb)" : "tessel 0.1.0 (aaa)");
  CHECK_THROWS_WITH(check_same_build(mixed),
                    Catch::Contains("tessel 0.2.0 (bbb): rank " + std::to_string(world.size() - 1) + " on host" +
                                    std::to_string((world.size() - 1) / 2)));
}

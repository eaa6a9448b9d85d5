// Rank identity from each launcher's variables.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "core/error.h"
#include "parallel/rank_identity.h"

using namespace tessel;

namespace {
RankIdentity identity(const std::map<std::string, std::string>& vars) {
  return rank_identity([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST_CASE("rank identity from OpenMPI, Slurm, torchrun, or none", "[cpu][launch]") {
  RankIdentity single = identity({});
  CHECK(single.source == "single");
  CHECK(single.world_size == 1);

  RankIdentity ompi = identity({{"OMPI_COMM_WORLD_RANK", "5"},
                                {"OMPI_COMM_WORLD_SIZE", "8"},
                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                                {"RANK", "0"},
                                {"WORLD_SIZE", "1"}});  // OpenMPI's win over stale torchrun ones
  CHECK(ompi.source == "openmpi");
  CHECK(ompi.rank == 5);
  CHECK(ompi.world_size == 8);
  CHECK(ompi.local_rank == 1);
  CHECK(ompi.local_world_size == 4);

  RankIdentity slurm = identity(
      {{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"}, {"SLURM_TASKS_PER_NODE", "2(x2)"}});
  CHECK(slurm.source == "slurm");
  CHECK(slurm.rank == 3);
  CHECK(slurm.local_rank == 1);
  CHECK(slurm.local_world_size == 2);

  RankIdentity torchrun =
      identity({{"RANK", "2"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "2"}});
  CHECK(torchrun.source == "torchrun");
  CHECK(torchrun.rank == 2);
  CHECK(torchrun.local_world_size == 2);
}

TEST_CASE("malformed launcher variables are errors that name them", "[cpu][launch]") {
  CHECK_THROWS_WITH(identity({{"RANK", "two"}, {"WORLD_SIZE", "4"}}), Catch::Contains("RANK='two'"));
  CHECK_THROWS_WITH(identity({{"RANK", "4"}, {"WORLD_SIZE", "4"}}), Catch::Contains("rank 4 is outside a world of 4"));
  CHECK_THROWS_WITH(identity({{"OMPI_COMM_WORLD_RANK", "0"},
                              {"OMPI_COMM_WORLD_SIZE", "2"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "2"},
                              {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}),
                    Catch::Contains("local rank 2 of 2"));
}

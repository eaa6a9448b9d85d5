// Pipeline schedules as pure data: complete (each micro-batch and chunk once forward, once
// backward), deadlock-free when simulated, with the memory and bubble each promises.
#include <catch2/catch.hpp>

#include <set>

#include "core/error.h"
#include "parallel/pipeline_schedule.h"

using namespace tessel;

TEST_CASE("every schedule is complete and deadlock-free for many shapes", "[cpu][pp]") {
  int checked = 0;
  for (Schedule name : {Schedule::kGpipe, Schedule::k1F1B, Schedule::kInterleaved}) {
    for (int pp = 1; pp <= 8; ++pp) {
      for (int v = 1; v <= 4; ++v) {
        if ((name == Schedule::kInterleaved) != (v > 1)) continue;
        for (int m = 1; m <= 16; ++m) {
          if (name == Schedule::kInterleaved && m % pp != 0) continue;
          INFO(name << " pp " << pp << " v " << v << " m " << m);
          const auto schedule = build_pipeline_schedule(name, pp, v, m);
          REQUIRE(static_cast<int>(schedule.size()) == pp);
          for (const auto& list : schedule) {
            std::set<std::tuple<int, int, int>> seen;
            std::set<std::pair<int, int>> forwarded;
            for (const PipeAction& a : list) {
              CHECK(seen.insert({a.kind, a.micro_batch, a.chunk}).second);  // nothing twice
              if (a.kind == PipeAction::kForward)
                forwarded.insert({a.micro_batch, a.chunk});
              else
                CHECK(forwarded.count({a.micro_batch, a.chunk}) == 1);  // its own forward first
            }
            CHECK(static_cast<int>(seen.size()) == 2 * m * v);
          }
          const PipelineSimulation sim = simulate_pipeline(schedule, pp, v);
          INFO(sim.stuck);
          CHECK(sim.complete);
          // Every link receives in the order it sends: safe on a transport without tags (NCCL).
          INFO(sim.out_of_order);
          CHECK(sim.transfers_in_order);
          ++checked;
        }
      }
    }
  }
  CHECK(checked > 200);
}

TEST_CASE("1f1b keeps at most pp micro-batches alive on the first stage, gpipe keeps all", "[cpu][pp]") {
  for (int pp : {2, 4}) {
    const int m = 8;
    const PipelineSimulation one = simulate_pipeline(build_pipeline_schedule(Schedule::k1F1B, pp, 1, m), pp, 1);
    const PipelineSimulation all = simulate_pipeline(build_pipeline_schedule(Schedule::kGpipe, pp, 1, m), pp, 1);
    CHECK(one.peak_alive[0] == pp);
    CHECK(one.peak_alive[static_cast<size_t>(pp - 1)] == 1);  // the last stage goes forward, backward
    CHECK(all.peak_alive[0] == m);
  }
}

TEST_CASE("simulated bubbles follow (p - 1) / (m v + p - 1) of the time", "[cpu][pp]") {
  // Megatron's bubble (p - 1) / (m v) is idle time over useful time; as a share of all time it
  // is (p - 1) / (m v + p - 1).
  for (int pp : {2, 4}) {
    for (int m : {4, 8, 16}) {
      const double theory = static_cast<double>(pp - 1) / (m + pp - 1);
      CHECK(simulate_pipeline(build_pipeline_schedule(Schedule::kGpipe, pp, 1, m), pp, 1).bubble_fraction ==
            Approx(theory));
      CHECK(simulate_pipeline(build_pipeline_schedule(Schedule::k1F1B, pp, 1, m), pp, 1).bubble_fraction ==
            Approx(theory));
      const double interleaved =
          simulate_pipeline(build_pipeline_schedule(Schedule::kInterleaved, pp, 2, m), pp, 2).bubble_fraction;
      INFO("pp " << pp << " m " << m << ": interleaved bubble " << interleaved);
      CHECK(interleaved < theory);  // interleaving shrinks the bubble
      CHECK(interleaved == Approx(static_cast<double>(pp - 1) / (2 * m + pp - 1)));
    }
  }
}

TEST_CASE("a schedule in the wrong order is caught as a deadlock", "[cpu][pp]") {
  auto schedule = build_pipeline_schedule(Schedule::k1F1B, 2, 1, 4);
  // The last stage runs a backward before the forward it needs has arrived.
  std::swap(schedule[1][0], schedule[1][1]);
  const PipelineSimulation sim = simulate_pipeline(schedule, 2, 1);
  CHECK_FALSE(sim.complete);
  CHECK_THAT(sim.stuck, Catch::Contains("rank 1 waits at backward of micro-batch 0"));
}

TEST_CASE("a schedule whose transfers would pair the wrong micro-batches without tags is caught", "[cpu][pp]") {
  // Rank 1 (the last stage of 2) takes micro-batches 0 and 1 forward in the other order: with
  // tags the receives still match, but NCCL would hand micro-batch 0's activations to 1.
  std::vector<std::vector<PipeAction>> schedule = build_pipeline_schedule(Schedule::kGpipe, 2, 1, 2);
  std::swap(schedule[1][0], schedule[1][1]);
  const PipelineSimulation sim = simulate_pipeline(schedule, 2, 1);
  CHECK(sim.complete);
  CHECK_FALSE(sim.transfers_in_order);
  CHECK_THAT(sim.out_of_order, Catch::Contains("rank 0 sends activations to rank 1 in another order") &&
                                   Catch::Contains("micro-batch 0 of stage 1 on the sending side and micro-batch 1"));
}

TEST_CASE("impossible pipeline layouts are clear errors", "[cpu][pp]") {
  CHECK_THROWS_WITH(build_pipeline_schedule(Schedule::kInterleaved, 4, 2, 6),
                    Catch::Contains("micro-batches per step (6) to be a multiple of parallel.pp (4)"));
  CHECK_THROWS_WITH(build_pipeline_schedule(Schedule::k1F1B, 2, 2, 4), Catch::Contains("needs schedule 'interleaved'"));
  CHECK(partition_layers(8, 2, 2) == std::vector<std::pair<int, int>>{{0, 2}, {2, 4}, {4, 6}, {6, 8}});
  // Listed counts, in stage order (interleaved: stage c·pp + r is chunk c of rank r).
  CHECK(partition_layers(10, 2, 2, {PipelineSplit::kEven, {1, 3, 4, 2}}) ==
        std::vector<std::pair<int, int>>{{0, 1}, {1, 4}, {4, 8}, {8, 10}});
  CHECK_THROWS_WITH(partition_layers(10, 2, 1, {PipelineSplit::kEven, {4, 5}}),
                    Catch::Contains("lists 2 stages of 9 layers in all, for 2 stages"));
  CHECK_THROWS_WITH(partition_layers(6, 4, 1),
                    Catch::Contains("model.layers (6) must be divisible by parallel.pp (4)"));
  CHECK_THROWS_WITH(partition_layers(2, 4, 1), Catch::Contains("fewer than the 4 pipeline stages"));
  // The embedding and the head weigh as a layer each: 12 units over 4 stages, 3 per stage.
  CHECK(partition_layers(10, 4, 1, {PipelineSplit::kEndsAsLayers, {}}) ==
        std::vector<std::pair<int, int>>{{0, 2}, {2, 5}, {5, 8}, {8, 10}});
  CHECK(partition_layers(6, 2, 2, {PipelineSplit::kEndsAsLayers, {}}) ==
        std::vector<std::pair<int, int>>{{0, 1}, {1, 3}, {3, 5}, {5, 6}});
  CHECK_THROWS_WITH(partition_layers(8, 4, 1, {PipelineSplit::kEndsAsLayers, {}}),
                    Catch::Contains("model.layers + 2 (10) must be divisible"));
}

// Pipeline parallelism against the single-rank run. Under mpirun ([mpi] with 2 and 4 ranks,
// [mpi8] with 8): every rank runs the single-rank reference in-process, then the same training
// as one rank of a tp × pp × dp grid built as `tessel train` builds it (RankModel), and
// compares the loss curve over 20 steps and every gathered gradient after step 1.
#include <catch2/catch.hpp>

#include "tests/parallel/mpi_world.h"
#include "tests/train/layout_run.h"

using namespace tessel;

namespace {

// GPT-2: learned positions, biases, LayerNorm, a head tied to the embedding (so the first and
// the last stage share it). LLaMA: GQA, SwiGLU, RMSNorm, RoPE, untied head. 8 layers: pp 4 with
// 2 virtual stages holds one layer per chunk. 4 micro-batches of 2 per step.
Config tiny(const std::string& arch, int layers = 8) {
  return tiny_layout_config(arch, arch == "gpt2" ? "heads: 4, kv_heads: 4" : "heads: 4, kv_heads: 2", layers, 8, 2);
}

Config layout(Config c, int tp, int pp, Schedule schedule, int v = 1) {
  c.parallel.tp = tp;
  c.parallel.pp = pp;
  c.parallel.schedule = schedule;
  c.parallel.virtual_stages = v;
  return c;
}

}  // namespace

TEST_CASE("pipeline parallel with each schedule follows one rank", "[mpi][pp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  if (P != 2 && P != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {
    const Config c = tiny(arch);
    const LayoutRun want = train_single_rank(c);
    REQUIRE(want.losses.back() < want.losses.front() - 0.5);  // it learns
    for (const auto& [schedule, v] : std::vector<std::pair<Schedule, int>>{
             {Schedule::kGpipe, 1}, {Schedule::k1F1B, 1}, {Schedule::kInterleaved, 2}}) {
      INFO(arch << ": pp " << P << ", schedule " << schedule << ", virtual stages " << v);
      compare_layout_runs(train_layout(layout(c, 1, P, schedule, v), world), want);
    }
    if (P == 4) {
      // 10 layers with the embedding and the head weighing a layer each: stages of 2, 3, 3, 2.
      Config ten = tiny(arch, 10);
      const LayoutRun want10 = train_single_rank(ten);
      ten = layout(ten, 1, 4, Schedule::k1F1B);
      ten.parallel.pipeline_split.kind = PipelineSplit::kEndsAsLayers;
      INFO(arch << ": pp 4, 10 layers split with the ends as layers");
      compare_layout_runs(train_layout(ten, world), want10);
      // Listed: stages of 1, 2, 3 and 4 layers (as for GPUs of four speeds).
      ten.parallel.pipeline_split = {PipelineSplit::kEven, {1, 2, 3, 4}};
      INFO(arch << ": pp 4, 10 layers split 1, 2, 3, 4");
      compare_layout_runs(train_layout(ten, world), want10);
    } else {
      // Listed, interleaved: chunks of 1, 3, 2 and 2 layers over the two ranks.
      INFO(arch << ": pp 2, interleaved, 8 layers split 1, 3, 2, 2");
      Config uneven = layout(c, 1, 2, Schedule::kInterleaved, 2);
      uneven.parallel.pipeline_split = {PipelineSplit::kEven, {1, 3, 2, 2}};
      compare_layout_runs(train_layout(uneven, world), want);
    }
  }
}

TEST_CASE("pipeline parallel composes with tensor parallel (sequence parallel) and with data parallel (zero)",
          "[mpi][pp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {
    const Config c = tiny(arch);
    const LayoutRun want = train_single_rank(c);
    for (Schedule schedule : {Schedule::k1F1B, Schedule::kInterleaved}) {
      const int v = schedule == Schedule::kInterleaved ? 2 : 1;
      INFO(arch << ": tp 2 x pp 2, sequence parallel, recompute selective, " << schedule);
      Config tp_pp = layout(c, 2, 2, schedule, v);
      tp_pp.parallel.sequence_parallel = true;
      tp_pp.parallel.recompute = Recompute::kSelective;
      compare_layout_runs(train_layout(tp_pp, world), want);
    }
    for (ZeroStage zero : {ZeroStage::k1, ZeroStage::k2}) {
      INFO(arch << ": pp 2 x dp 2, zero " << zero << ", recompute full");
      Config pp_dp = layout(c, 1, 2, Schedule::k1F1B);
      pp_dp.parallel.zero = zero;
      pp_dp.parallel.recompute = Recompute::kFull;
      // ZeRO-2 leaves each rank only its shard of the reduced gradient: the curves say it all.
      compare_layout_runs(train_layout(pp_dp, world), want, zero < ZeroStage::k2);
    }
    // Replicas of unequal shares: 1 and 3 micro-batches per step, each its own pipeline schedule.
    INFO(arch << ": pp 2 x dp 2, batch.shares [1, 3]");
    Config shares = layout(c, 1, 2, Schedule::k1F1B);
    shares.batch.shares = {1, 3};
    compare_layout_runs(train_layout(shares, world), want);
  }
}

TEST_CASE("3D: tp 2 x pp 2 x dp 2 with zero 1 and sequence parallelism follows one rank", "[mpi8][pp]") {
  MpiCommunicator& world = test_world();
  REQUIRE(world.size() == 8);
  for (const std::string arch : {"gpt2", "llama"}) {
    const Config c = tiny(arch);
    const LayoutRun want = train_single_rank(c);
    for (Schedule schedule : {Schedule::k1F1B, Schedule::kInterleaved}) {
      INFO(arch << ": tp 2 x pp 2 x dp 2, zero 1, sequence parallel, " << schedule);
      Config three_d = layout(c, 2, 2, schedule, schedule == Schedule::kInterleaved ? 2 : 1);
      three_d.parallel.zero = ZeroStage::k1;
      three_d.parallel.sequence_parallel = true;
      compare_layout_runs(train_layout(three_d, world), want);
    }
  }
}

TEST_CASE("1f1b keeps at most pp micro-batches of activations on the first stage, gpipe all of them", "[mpi][pp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  Config c = tiny("llama");
  c.batch.global = 16;  // 8 micro-batches of 2
  c.run.steps = 1;
  for (Schedule schedule : {Schedule::k1F1B, Schedule::kGpipe}) {
    const Config pp = layout(c, 1, 4, schedule);
    const Topology topology = Topology::from_config(pp.parallel, world.size(), world.rank());
    RankModel r = RankModel::build(pp, world, topology);
    r.model->reset_peak_live_activations();
    r.step->run(0, [](uint64_t first, const Tensor& tokens, const Tensor& targets) {
      fill_synthetic_tokens(first, tokens, targets, 5, 13);
    });
    const int stage = topology.coord(Axis::kPp);
    INFO(schedule << ", stage " << stage << ": peak " << r.model->peak_live_activations() << " live activation slots");
    CHECK(r.model->live_activations() == 0);
    if (schedule == Schedule::k1F1B) {
      CHECK(r.model->peak_live_activations() == 4 - stage);  // pp - stage; 4 on stage 0
    } else {
      CHECK(r.model->peak_live_activations() == 8);
    }
  }
}

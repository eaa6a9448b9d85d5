// Mixture-of-Experts layers in every layout against the single-rank run. Under mpirun ([mpi]
// with 2 and 4 ranks, [mpi8] with 8): every rank runs the single-rank reference in-process,
// then the same training as one rank of a tp × pp × dp grid built as `tessel train` builds it,
// and compares the loss curve over 20 steps and every gathered gradient after step 1. With
// expert parallelism each rank also holds only its 1/ep of the routed experts. The
// router runs on every tensor-parallel rank alike and each expert is split like a dense FFN, so
// the routing (and the aux loss) is the same in every layout.
#include <catch2/catch.hpp>

#include "tests/parallel/mpi_world.h"
#include "tests/train/layout_run.h"

using namespace tessel;

namespace {

// The layout tests' tiny LLaMA (4 layers, GQA) with 8 experts of width 16, top-2, one shared
// expert, dropless, aux balancing; `moe` adds or overrides model.moe keys; cla_share 2: layer
// pairs share keys and values (cross-layer attention).
Config tiny_moe(const std::string& moe = "", int cla_share = 1) {
  Config c = tiny_layout_config("llama", "heads: 4, kv_heads: 2", 4, 8, 2);
  return parse_config(
      to_yaml(c), "tiny-moe.yaml",
      {"model.moe={experts: 8, top_k: 2, shared_experts: 1, expert_ffn_dim: 16, aux_loss_coeff: 0.01" + moe + "}",
       "model.cla_share=" + std::to_string(cla_share)});
}

Config layout(Config c, int tp, int pp, int ep = 1) {
  c.parallel.tp = tp;
  c.parallel.pp = pp;
  c.parallel.ep = ep;
  return c;
}

}  // namespace

TEST_CASE("MoE: tp 2, pp 2, dp 2 and ep 2 follow one rank, without and with cross-layer attention", "[mpi][moe]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 2) return;
  for (int cla : {1, 2}) {
    INFO("model.cla_share " << cla);
    const Config c = tiny_moe("", cla);
    const LayoutRun want = train_single_rank(c);
    REQUIRE(want.losses.back() < want.losses.front() - 0.5);  // the reference really trains
    {
      INFO("tp 2, sequence parallel");
      Config tp = layout(c, 2, 1);
      tp.parallel.sequence_parallel = true;
      compare_layout_runs(train_layout(tp, world), want);
    }
    {
      INFO("pp 2, 1f1b, recompute full");
      Config pp = layout(c, 1, 2);
      pp.parallel.recompute = Recompute::kFull;
      compare_layout_runs(train_layout(pp, world), want);
    }
    {
      INFO("dp 2, zero 1");
      Config dp = layout(c, 1, 1);
      dp.parallel.zero = ZeroStage::k1;
      compare_layout_runs(train_layout(dp, world), want);
    }
    {
      INFO("ep 2");
      const LayoutRun got = train_layout(layout(c, 1, 1, 2), world);
      compare_layout_runs(got, want);
      CHECK(got.routed_expert_params * 2 == want.routed_expert_params);  // each rank holds half the experts
    }
  }
}

TEST_CASE(
    "MoE: tp 2 x pp 2, pp 2 x dp 2, dp 4, ep 4, ep 2 in dp 4, tp 2 x ep 2 and pp 2 x ep 2 (also with a dense first "
    "stage) follow one rank, also "
    "with capacity, aux-free balancing and CLA",
    "[mpi][moe]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  for (const std::string variant : {"",
                                    ", capacity_factor: 1.0, overflow: reroute, balance: aux_free, "
                                    "bias_update_rate: 0.01, first_dense: 1, every: 2, shared_gate: true"}) {
    INFO("model.moe" << (variant.empty() ? " (dropless, aux)" : variant + ", model.cla_share 2"));
    const Config c = tiny_moe(variant, variant.empty() ? 1 : 2);
    const LayoutRun want = train_single_rank(c);
    {
      INFO("tp 2 x pp 2, sequence parallel, recompute selective");
      Config tp_pp = layout(c, 2, 2);
      tp_pp.parallel.sequence_parallel = true;
      tp_pp.parallel.recompute = Recompute::kSelective;
      compare_layout_runs(train_layout(tp_pp, world), want);
    }
    {
      INFO("pp 2 x dp 2, zero 2");
      Config pp_dp = layout(c, 1, 2);
      pp_dp.parallel.zero = ZeroStage::k2;
      compare_layout_runs(train_layout(pp_dp, world), want, false);
    }
    {
      INFO("dp 4, zero 1");
      Config dp = layout(c, 1, 1);
      dp.parallel.zero = ZeroStage::k1;
      compare_layout_runs(train_layout(dp, world), want);
    }
    {
      INFO("ep 4");
      const LayoutRun got = train_layout(layout(c, 1, 1, 4), world);
      compare_layout_runs(got, want);
      CHECK(got.routed_expert_params * 4 == want.routed_expert_params);
    }
    for (const ZeroStage zero : {ZeroStage::k1, ZeroStage::k2}) {
      INFO("ep 2 within dp 4 (each expert held by two ranks), zero " << zero_stage(zero));
      Config ep = layout(c, 1, 1, 2);
      ep.parallel.zero = zero;
      const LayoutRun got = train_layout(ep, world);
      compare_layout_runs(got, want, zero == ZeroStage::k1);
      CHECK(got.routed_expert_params * 2 == want.routed_expert_params);
    }
    {
      INFO("tp 2 x ep 2, sequence parallel");
      Config tp_ep = layout(c, 2, 1, 2);
      tp_ep.parallel.sequence_parallel = true;
      compare_layout_runs(train_layout(tp_ep, world), want);
    }
    {
      INFO("pp 2 x ep 2, recompute full");
      Config pp_ep = layout(c, 1, 2, 2);
      pp_ep.parallel.recompute = Recompute::kFull;
      compare_layout_runs(train_layout(pp_ep, world), want);
    }
  }
  // A first stage of dense layers only: its store has no expert region while the second's has.
  const Config dense_first = tiny_moe(", first_dense: 2");
  INFO("pp 2 x ep 2, model.moe.first_dense 2, zero 1");
  Config pp_ep = layout(dense_first, 1, 2, 2);
  pp_ep.parallel.zero = ZeroStage::k1;
  compare_layout_runs(train_layout(pp_ep, world), train_single_rank(dense_first));
}

TEST_CASE("MoE with cross-layer attention: tp 2 x pp 2 x dp 2 with zero 1 follows one rank, with ep 1 and ep 2",
          "[mpi8][moe]") {
  MpiCommunicator& world = test_world();
  REQUIRE(world.size() == 8);
  const Config c = tiny_moe("", 2);
  const LayoutRun want = train_single_rank(c);
  for (int ep : {1, 2}) {
    INFO("tp 2 x pp 2 x dp 2, ep " << ep);
    Config three_d = layout(c, 2, 2, ep);
    three_d.parallel.zero = ZeroStage::k1;
    three_d.parallel.sequence_parallel = true;
    compare_layout_runs(train_layout(three_d, world), want);
  }
}

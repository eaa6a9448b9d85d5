// Tensor and sequence parallelism against the single-rank run. Under mpirun with 2 or 4 ranks
// ([mpi]): every rank runs the single-rank reference in-process, then the same training as
// one rank of a tp (× dp) grid, and compares the loss curve and gradient norms over 20 steps
// and every gathered gradient after step 1 (tests/train/layout_run.h).
#include <catch2/catch.hpp>

#include "tests/parallel/mpi_world.h"
#include "tests/train/layout_run.h"

using namespace tessel;

namespace {

// GPT-2 with learned positions, biases, LayerNorm, tied head; LLaMA with GQA (8 heads, 4 kv
// heads), SwiGLU, RMSNorm, RoPE, untied head; "llama-kv2": 2 kv heads, so that tp 4 shares
// each key/value head between 2 ranks. Two layers, one micro-batch of 4 per step: small enough
// for 4 ranks on 2 cores.
Config tiny(const std::string& name) {
  const std::string heads = name == "gpt2"    ? "heads: 4, kv_heads: 4"
                            : name == "llama" ? "heads: 8, kv_heads: 4"
                                              : "heads: 8, kv_heads: 2";
  return tiny_layout_config(name == "gpt2" ? "gpt2" : "llama", heads, 2, 4, 4);
}

}  // namespace

TEST_CASE("tensor parallel, with and without sequence parallelism and recomputation, follows one rank", "[mpi][tp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  if (P != 2 && P != 4) return;  // tp must divide the heads
  for (const std::string arch : {"gpt2", "llama", "llama-kv2"}) {
    Config c = tiny(arch);
    const LayoutRun reference = train_single_rank(c);
    REQUIRE(reference.losses.back() < reference.losses.front() - 0.5);  // it learns
    c.parallel.tp = P;
    for (bool sp : {false, true}) {
      for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
        INFO(arch << ": tp " << P << ", sequence parallel " << sp << ", recompute " << recompute);
        c.parallel.sequence_parallel = sp;
        c.parallel.recompute = recompute;
        compare_layout_runs(train_layout(c, world), reference);
      }
    }
    // Two micro-batches per step: partial gradients (norms under sequence parallelism, shared
    // key/value heads) are reduced once, after the last.
    INFO(arch << ": tp " << P << ", sequence parallel, 2 micro-batches per step");
    c.parallel.sequence_parallel = true;
    c.parallel.recompute = Recompute::kNone;
    c.batch.micro = 2;
    compare_layout_runs(train_layout(c, world), reference);
  }
}

TEST_CASE("tensor parallel 2 x data parallel 2 with zero 1 and 2 follows one rank", "[mpi][tp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {
    Config c = tiny(arch);
    const LayoutRun reference = train_single_rank(c);
    c.parallel.tp = 2;  // dp: auto, 2
    c.batch.micro = 2;
    for (ZeroStage zero : {ZeroStage::k1, ZeroStage::k2}) {
      for (bool sp : {false, true}) {
        INFO(arch << ": tp 2 x dp 2, zero " << zero << ", sequence parallel " << sp);
        c.parallel.zero = zero;
        c.parallel.sequence_parallel = sp;
        // ZeRO-2 leaves each rank only its shard of the reduced gradient: the curves say it all.
        compare_layout_runs(train_layout(c, world), reference, zero < ZeroStage::k2);
      }
    }
  }
}

// Tensor and sequence parallelism against the single-rank run. Under mpirun with 2 or 4 ranks
// ([mpi]): every rank runs the single-rank reference in-process, then the same training as
// one shard of a tp (× dp) grid, and compares the loss curve over 20 steps and every gathered
// gradient after step 1.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/model/param_specs.h"
#include "launch/train_step.h"
#include "parallel/comm/single_communicator.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"
#include "tests/parallel/mpi_world.h"
#include "tests/parallel/synthetic_tokens.h"

using namespace tessel;

namespace {

// GPT-2 with learned positions, biases, LayerNorm, tied head; LLaMA with GQA (8 heads, 4 kv
// heads), SwiGLU, RMSNorm, RoPE, untied head; "llama-kv2": 2 kv heads, so that tp 4 shares
// each key/value head between 2 ranks. Small enough for 4 ranks on 2 cores.
Config tiny(const std::string& name) {
  const std::string arch = name == "gpt2" ? "gpt2" : "llama";
  const std::string heads = name == "gpt2" ? "heads: 4, kv_heads: 4" : name == "llama" ? "heads: 8, kv_heads: 4"
                                                                                      : "heads: 8, kv_heads: 2";
  return parse_config("model: {arch: " + arch + ", vocab_size: 64, seq_len: 16, layers: 2, d_model: 32, " + heads +
                          ", ffn_dim: 64}\n"
                          "optim: {lr: 1.0e-2, warmup_steps: 2, weight_decay: 0.1, grad_clip: 0.5}\n"
                          "batch: {global: 4, micro: 4}\n"
                          "run: {steps: 20, seed: 11}\n",
                      "tiny.yaml");
}

void fill(uint64_t first, const Tensor& tokens, const Tensor& targets) {
  fill_synthetic_tokens(first, tokens, targets, 5, 13);
}

struct Run {
  std::vector<double> losses;
  std::vector<float> grads_after_step1;  // whole tensors, laid out as without TP
};

// Trains `c` on `tp` × `dp` (communicators may be groups of one).
Run train(const Config& c, Communicator& dp, Communicator* tp) {
  Transformer model(c.model, c.batch.micro, c.model.seq_len, c.parallel.recompute, bucket_multiple(dp.size()), tp,
                    c.parallel.sequence_parallel);
  model.parameters().initialize(c.run.seed);
  TrainStep step(c, model, dp, tp);
  ParameterStore full(transformer_param_specs(c.model));
  Run run;
  for (int64_t s = 0; s < c.run.steps; ++s) {
    run.losses.push_back(step.run(s, fill).loss);
    if (s == 0) {
      const Tensor whole = Tensor::zeros({full.numel()}, DType::F32);
      gather_shards(model.parameters(), model.parameters().grads(), full, whole, tp);
      run.grads_after_step1.assign(whole.data<float>(), whole.data<float>() + whole.numel());
    }
  }
  return run;
}

void compare(const Run& got, const Run& want) {
  double worst_loss = 0, worst_grad = 0, scale = 0;
  for (size_t i = 0; i < want.losses.size(); ++i) {
    worst_loss = std::max(worst_loss, std::abs(got.losses[i] - want.losses[i]) / want.losses[i]);
  }
  for (size_t i = 0; i < want.grads_after_step1.size(); ++i) {
    worst_grad = std::max(worst_grad, static_cast<double>(std::abs(got.grads_after_step1[i] - want.grads_after_step1[i])));
    scale = std::max(scale, static_cast<double>(std::abs(want.grads_after_step1[i])));
  }
  INFO("worst relative loss error " << worst_loss << ", worst gradient error " << worst_grad << " (largest gradient "
                                    << scale << ")");
  // fp32 with the sums split over ranks in another order.
  CHECK(worst_loss < 1e-5);
  CHECK(worst_grad < 1e-5 * scale);
}

}  // namespace

TEST_CASE("tensor parallel, with and without sequence parallelism and recomputation, follows one rank", "[mpi][tp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  if (P != 2 && P != 4) return;  // tp must divide the heads
  for (const std::string arch : {"gpt2", "llama", "llama-kv2"}) {
    Config c = tiny(arch);
    SingleCommunicator one, one_dp;
    const Run reference = train(c, one_dp, nullptr);
    REQUIRE(reference.losses.back() < reference.losses.front() - 0.5);  // it learns
    for (bool sp : {false, true}) {
      for (const std::string recompute : {"none", "selective", "full"}) {
        INFO(arch << ": tp " << P << ", sequence parallel " << sp << ", recompute " << recompute);
        c.parallel.sequence_parallel = sp;
        c.parallel.recompute = recompute;
        compare(train(c, one, &world), reference);
      }
    }
    // Two micro-batches per step: partial gradients (norms under sequence parallelism, shared
    // key/value heads) are reduced once, after the last.
    INFO(arch << ": tp " << P << ", sequence parallel, 2 micro-batches per step");
    c.parallel.sequence_parallel = true;
    c.parallel.recompute = "none";
    c.batch.micro = 2;
    compare(train(c, one, &world), reference);
  }
}

TEST_CASE("tensor parallel 2 x data parallel 2 with zero 1 and 2 follows one rank", "[mpi][tp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {
    Config c = tiny(arch);
    SingleCommunicator one;
    const Run reference = train(c, one, nullptr);
    GridShape shape;
    shape.tp = 2;
    shape.dp = 2;
    const Topology topo(shape, world.rank());
    std::unique_ptr<Communicator> tp = world.split(topo.group_color(Axis::kTp), topo.coord(Axis::kTp), "tp");
    std::unique_ptr<Communicator> dp = world.split(topo.group_color(Axis::kDp), topo.coord(Axis::kDp), "dp");
    for (bool sp : {false, true}) {
      INFO(arch << ": tp 2 x dp 2, zero 1, sequence parallel " << sp);
      c.parallel.zero = 1;
      c.parallel.sequence_parallel = sp;
      c.batch.micro = 2;
      compare(train(c, *dp, tp.get()), reference);
    }
    // ZeRO-2 leaves each rank only its shard of the reduced gradient, so only the loss curve
    // (which depends on every gradient through the updates and the clipped global norm).
    c.parallel.zero = 2;
    const Run zero2 = train(c, *dp, tp.get());
    for (size_t i = 0; i < reference.losses.size(); ++i) {
      CHECK(std::abs(zero2.losses[i] - reference.losses[i]) < 1e-5 * reference.losses[i]);
    }
  }
}

// Data parallelism and ZeRO against the single-rank reference. Under mpirun ([mpi]) every rank
// first runs the single-rank reference in-process (a group of one), then the same training on
// the world as data-parallel replicas, and compares loss curves, gradient norms and weights.
#include <catch2/catch.hpp>

#include <cmath>

#include "parallel/comm/single_communicator.h"
#include "tests/parallel/mpi_world.h"
#include "tests/parallel/synthetic_tokens.h"
#include "train/train_step.h"

using namespace tessel;

namespace {

Config tiny(const std::string& arch, int64_t global, int64_t micro, ZeroStage zero) {
  Config c = parse_config("model: {arch: " + arch +
                              ", vocab_size: 64, seq_len: 16, layers: 2, d_model: 32, heads: 4, "
                              "kv_heads: 2, ffn_dim: 64}\n"
                              "optim: {lr: 1.0e-2, warmup_steps: 2, weight_decay: 0.1, grad_clip: 0.5}\n"
                              "run: {steps: 20, seed: 7}\n",
                          "tiny.yaml");
  c.batch.global = global;
  c.batch.micro = micro;
  c.parallel.zero = zero;
  c.parallel.bucket_mb = 0.004;  // ~1000 floats: many buckets, several per layer
  return c;
}

void fill(uint64_t first, const Tensor& tokens, const Tensor& targets) {
  fill_synthetic_tokens(first, tokens, targets, 7, 11);
}

struct Run {
  std::vector<double> losses, norms;
  std::vector<float> params;  // the real parameters (padding excluded), after the last step
};

Run train(const Config& c, Communicator& group) {
  TransformerOptions model_options(c.batch.micro, c.model.seq_len);
  model_options.param_multiple = bucket_multiple(group.size());
  Transformer model(c.model, model_options);
  model.parameters().initialize(c.run.seed);
  TrainStep step(c, model, group);
  Run run;
  for (int64_t s = 0; s < c.run.steps; ++s) {
    const StepResult r = step.run(s, fill);
    run.losses.push_back(r.loss);
    run.norms.push_back(r.grad_norm);
  }
  for (const ParamEntry& e : model.parameters().entries()) {
    const float* p = model.parameters().params().data<float>() + e.offset;
    run.params.insert(run.params.end(), p, p + e.numel);
  }
  return run;
}

double max_relative(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return worst;
}

// fp32 with sums in another order: 20 steps of Adam stay within 1e-5 relative on the losses,
// 1e-4 on the norms and 1e-4 absolute on every weight.
void follows(const Run& dp, const Run& reference) {
  CHECK(max_relative(dp.losses, reference.losses) < 1e-5);
  CHECK(max_relative(dp.norms, reference.norms) < 1e-4);
  double worst = 0;
  for (size_t i = 0; i < dp.params.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(dp.params[i] - reference.params[i])));
  }
  CHECK(worst < 1e-4);
}

}  // namespace

TEST_CASE("data parallel with zero 0, 1 and 2, with and without accumulation, follows one rank", "[mpi][dp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  const int64_t global = 24;  // divisible by 2, 3 and 4 ranks, twice
  for (const std::string arch : {"gpt2", "llama"}) {
    SingleCommunicator one;
    const Run reference = train(tiny(arch, global, global, ZeroStage::k0), one);
    REQUIRE(reference.losses.back() < reference.losses.front() - 0.5);  // it learns
    for (ZeroStage zero : {ZeroStage::k0, ZeroStage::k1, ZeroStage::k2}) {
      for (int64_t accumulation : {1, 2}) {
        INFO(arch << " on " << P << " ranks, zero " << zero << ", " << accumulation << " micro-batches per step");
        const Run dp = train(tiny(arch, global, global / P / accumulation, zero), world);
        follows(dp, reference);
        // Every replica holds the same weights, bit for bit.
        Tensor mine = Tensor::from_vector<float>(dp.params, {static_cast<int64_t>(dp.params.size())});
        Tensor root = mine.clone();
        world.broadcast(root, 0);
        CHECK(std::memcmp(mine.raw(), root.raw(), mine.nbytes()) == 0);
      }
    }
  }
}

TEST_CASE("replicas with unequal shares of the batch (batch.shares) follow one rank, gradients weighted by tokens",
          "[mpi][dp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  // 24 sequences in micro-batches of 2: 12 micro-batches, split unevenly (the first replica a
  // GPU twice as fast as the others, say).
  const std::vector<int64_t> shares = P == 2   ? std::vector<int64_t>{9, 3}
                                      : P == 3 ? std::vector<int64_t>{6, 3, 3}
                                               : std::vector<int64_t>{5, 1, 2, 4};
  for (const std::string arch : {"gpt2", "llama"}) {
    SingleCommunicator one;
    const Run reference = train(tiny(arch, 24, 24, ZeroStage::k0), one);
    for (ZeroStage zero : {ZeroStage::k0, ZeroStage::k2}) {
      INFO(arch << " on " << P << " ranks, zero " << zero << ", shares of " << shares.front() << "...");
      Config c = tiny(arch, 24, 2, zero);
      c.batch.shares = shares;
      const Run dp = train(c, world);
      follows(dp, reference);
    }
  }
}

TEST_CASE("batch.shares must name every replica and add up to the batch", "[cpu][dp]") {
  BatchConfig b;
  b.global = 24;
  b.micro = 2;
  b.shares = {9, 3};
  CHECK(micro_batches_per_replica(b, 2) == std::vector<int64_t>{9, 3});
  CHECK_THROWS_WITH(micro_batches_per_replica(b, 3),
                    Catch::Contains("batch.shares lists 2 data-parallel replicas, but the layout has dp 3"));
  b.shares = {9, 2};
  CHECK_THROWS_WITH(micro_batches_per_replica(b, 2),
                    Catch::Contains("batch.shares adds up to 11 micro-batches of 2, not batch.global (24)"));
  b.shares.clear();
  CHECK(micro_batches_per_replica(b, 4) == std::vector<int64_t>{3, 3, 3, 3});
}

TEST_CASE("a data-parallel run is bitwise repeatable", "[mpi][dp]") {
  MpiCommunicator& world = test_world();
  const Config c = tiny("llama", 24, 24 / world.size() / 2, ZeroStage::k2);
  const Run a = train(c, world);
  const Run b = train(c, world);
  CHECK(a.losses == b.losses);
  CHECK(a.norms == b.norms);
  CHECK(a.params == b.params);
}

TEST_CASE("ZeRO shards the optimizer state to 1/dp of the parameters", "[mpi][dp]") {
  MpiCommunicator& world = test_world();
  const Config c0 = tiny("gpt2", 24, 24 / world.size(), ZeroStage::k0);
  TransformerOptions model_options(c0.batch.micro, c0.model.seq_len);
  model_options.param_multiple = bucket_multiple(world.size());
  Transformer model(c0.model, model_options);
  const TrainStep full(c0, model, world);
  for (ZeroStage zero : {ZeroStage::k1, ZeroStage::k2}) {
    const TrainStep sharded(tiny("gpt2", 24, 24 / world.size(), zero), model, world);
    CHECK(sharded.optimizer_state_bytes() * world.size() == full.optimizer_state_bytes());
  }
}

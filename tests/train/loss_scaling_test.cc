// Loss scaling in the train step (precision.compute fp16): the scale multiplies the loss
// before backward and is divided out of the norm and the update. Scales are powers of two, so
// on the fp32 CPU model (where nothing overflows) a scaled run equals the unscaled run
// bitwise; an overflow under a fixed scale is a non-finite step for the guard.
#include <cmath>
#include <filesystem>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/error.h"
#include "core/model/transformer.h"
#include "parallel/comm/single_communicator.h"
#include "train/checkpointer.h"
#include "train/rank_model.h"
#include "train/train_step.h"

using namespace tessel;

namespace {

Config tiny(const std::string& precision, const std::string& loss_scale) {
  return parse_config(
      "model: {arch: llama, vocab_size: 40, seq_len: 8, layers: 2, d_model: 16, heads: 4, "
      "kv_heads: 2}\n"
      "batch: {global: 4, micro: 2}\n"
      "optim: {lr: 1.0e-2, warmup_steps: 1, grad_clip: 0.5, max_skipped_steps: 2}\n"
      "precision: {compute: " +
          precision + ", loss_scale: " + loss_scale +
          "}\n"
          "run: {steps: 4, seed: 3}\n",
      "tiny");
}

struct Run {
  std::vector<StepResult> steps;
  std::vector<float> params, m, v;  // after the last step
};

Run train(const Config& c) {
  Transformer model(c.model, TransformerOptions(c.batch.micro, c.model.seq_len));
  model.parameters().initialize(c.run.seed);
  SingleCommunicator one;
  TrainStep step(c, model, one);
  Run run;
  for (int64_t s = 0; s < c.run.steps; ++s) run.steps.push_back(step.run(s, synthetic_batches(c)));
  auto values = [](const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); };
  run.params = values(model.parameters().params());
  run.m = values(step.exp_avg());
  run.v = values(step.exp_avg_sq());
  return run;
}

}  // namespace

TEST_CASE("a scaled step equals the unscaled step bitwise, the scale divided out of norm and update",
          "[cpu][train][scaler]") {
  const Run plain = train(tiny("fp32", "dynamic"));
  for (const std::string scale : {"1024", "dynamic"}) {
    INFO("loss_scale " << scale);
    const Run scaled = train(tiny("fp16", scale));
    for (size_t s = 0; s < plain.steps.size(); ++s) {
      CHECK(scaled.steps[s].loss == plain.steps[s].loss);
      CHECK(scaled.steps[s].grad_norm == plain.steps[s].grad_norm);
      CHECK(scaled.steps[s].loss_scale == (scale == "1024" ? 1024.0 : 65536.0));
      CHECK_FALSE(scaled.steps[s].skipped);
    }
    CHECK(plain.steps[0].loss_scale == 1.0);
    CHECK(scaled.params == plain.params);  // and so are the weights and both moments
    CHECK(scaled.m == plain.m);
    CHECK(scaled.v == plain.v);
  }
}

TEST_CASE("gradients that overflow under a fixed loss scale are non-finite steps for the guard",
          "[cpu][train][scaler][errors]") {
  // 2^127: every gradient times the scale overflows fp32's range.
  const Config c = tiny("fp16", "1.7014118346046923e38");
  Transformer model(c.model, TransformerOptions(c.batch.micro, c.model.seq_len));
  model.parameters().initialize(c.run.seed);
  SingleCommunicator one;
  TrainStep step(c, model, one);
  const StepResult r = step.run(0, synthetic_batches(c));
  CHECK(r.skipped);
  CHECK_FALSE(r.overflow);
  step.run(1, synthetic_batches(c));
  CHECK_THROWS_WITH(step.run(2, synthetic_batches(c)), Catch::Contains("non-finite"));
}

TEST_CASE("overflows under a dynamic loss scale skip the step and halve the scale, without the guard",
          "[cpu][train][scaler]") {
  Config c = tiny("fp16", "dynamic");
  c.run.steps = 200;
  Transformer model(c.model, TransformerOptions(c.batch.micro, c.model.seq_len));
  model.parameters().initialize(c.run.seed);
  SingleCommunicator one;
  TrainStep step(c, model, one);
  step.scaler().restore({std::ldexp(1.0, 127), 0});  // far above what the gradients allow
  int64_t overflows = 0, s = 0;
  for (; s < c.run.steps; ++s) {
    const StepResult r = step.run(s, synthetic_batches(c));
    if (!r.overflow) break;
    CHECK(r.skipped);
    CHECK(step.scaler().scale() == r.loss_scale / 2);
    ++overflows;
  }
  // More overflows in a row than optim.max_skipped_steps (2) allows non-finite steps.
  CHECK(overflows > 2);
  CHECK(s < c.run.steps);
  CHECK(step.guard().state().total_skipped == 0);
  CHECK(step.optimizer_steps() == 1);
}

TEST_CASE("a checkpoint carries the dynamic loss scale of an fp16 run, and only of one",
          "[cpu][train][scaler][checkpoint]") {
  const std::string dir = "loss_scaling_checkpoints";
  std::filesystem::remove_all(dir);
  Config c = tiny("fp16", "dynamic");
  c.checkpoint.dir = dir;
  SingleCommunicator world;
  const Topology topology = Topology::from_config(c.parallel, 1, 0);
  {
    RankModel r = RankModel::build(c, world, topology, nullptr);
    r.step->scaler().restore({4096.0, 5});
    r.step->run(0, synthetic_batches(c));  // a good step: 6 since the scale changed
    Checkpointer ck(c, world, r);
    TrainingState state;  // the save takes the scale from the step's scaler itself
    state.step = 1;
    state.optimizer_steps = 1;
    ck.save(state);
  }
  RankModel back = RankModel::build(c, world, topology, nullptr);
  Checkpointer(c, world, back).load(dir + "/step_00000001");
  CHECK(back.step->scaler().scale() == 4096.0);
  CHECK(back.step->scaler().state().good_steps == 6);
  // A bf16 run's checkpoint (scale 1) does not set an fp16 run's scale: it starts afresh.
  Config bf16 = c;
  bf16.precision.compute = Precision::kBf16;
  {
    RankModel r = RankModel::build(bf16, world, topology, nullptr);
    Checkpointer ck(bf16, world, r);
    TrainingState state;
    state.step = 2;
    ck.save(state);
  }
  RankModel fresh = RankModel::build(c, world, topology, nullptr);
  Checkpointer(c, world, fresh).load(dir + "/step_00000002");
  CHECK(fresh.step->scaler().scale() == LossScaler::kDynamicInitial);
  std::filesystem::remove_all(dir);
}

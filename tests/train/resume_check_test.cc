// What may change between a checkpoint and the run resuming from it (train/resume_check.h).
#include "train/resume_check.h"

#include <catch2/catch.hpp>

namespace tessel {
namespace {

using Catch::Contains;

Config small_run() {
  Config c;
  c.run.steps = 100;
  c.optim.warmup_steps = 10;
  c.optim.schedule = LrSchedule::kCosine;
  c.data.train = {{"data/a", std::nullopt}};
  return c;
}

TEST_CASE("a resume may not change what the model computes", "[resume]") {
  const Config saved = small_run();
  Config now = saved;
  CHECK(model_changes(saved.model, now.model).empty());
  now.model.heads = 6;
  now.model.kv_heads = 6;
  now.model.norm_eps = 1e-3;
  CHECK(model_changes(saved.model, now.model) ==
        std::vector<std::string>{"model.heads: 12 → 6", "model.kv_heads: 12 → 6", "model.norm_eps: 1e-05 → 0.001"});
  // A longer context and another init scale are no change of the computation.
  now = saved;
  now.model.seq_len = 2048;
  now.model.init_std = 0.01;
  CHECK(model_changes(saved.model, now.model).empty());
  // rope_theta matters only with RoPE.
  now.model.rope_theta = 500000;
  CHECK(model_changes(saved.model, now.model).empty());
  now.model.position = Position::kRope;
  CHECK(model_changes(saved.model, now.model).size() == 2);
}

TEST_CASE("the schedule is compared as the learning rates it gives, from the resumed step on", "[resume]") {
  const Config saved = small_run();
  Config now = saved;
  // decay_steps set to the value it had by default (run.steps - warmup): the same curve.
  now.optim.decay_steps = 90;
  CHECK(training_changes(saved, now, 50).empty());
  // Another decay length is a real change, named with the step and the raw settings.
  now.optim.decay_steps = 60;
  const std::vector<std::string> changes = training_changes(saved, now, 50);
  REQUIRE(changes.size() == 1);
  CHECK_THAT(changes[0],
             Contains("the learning-rate schedule (from step 50:") && Contains("optim.decay_steps: 0 → 60)"));
  // A change that only touches steps already trained is none for the rest of the run.
  Config constant = saved;
  constant.optim.schedule = LrSchedule::kConstant;
  now = constant;
  now.optim.warmup_steps = 20;
  CHECK_FALSE(training_changes(constant, now, 0).empty());
  CHECK(training_changes(constant, now, 50).empty());
  // Hyper-parameters and the blend's weights are named old → new.
  now = saved;
  now.optim.beta2 = 0.99;
  now.data.train[0].weight = 2.0;
  CHECK(training_changes(saved, now, 50) ==
        std::vector<std::string>{"optim.beta2: 0.95 → 0.99", "data.train[0].weight: by size → 2.000000"});
}

TEST_CASE("datasets are compared by path, size and fingerprint, per role", "[resume]") {
  const std::vector<DatasetFingerprint> saved = {{"train", "data/a_train", 100, "00aa", "gpt2"},
                                                 {"val", "data/a_val", 10, "00bb", "gpt2"}};
  CHECK(data_changes(saved, saved).empty());
  std::vector<DatasetFingerprint> now = saved;
  now[0].hash = "00cc";  // rewritten under the same path and size
  CHECK(data_changes(saved, now) ==
        std::vector<std::string>{"train dataset 0: data/a_train (100 bytes, fingerprint 00aa) → data/a_train (100 "
                                 "bytes, fingerprint 00cc)"});
  now = saved;
  now.pop_back();  // the validation set dropped
  CHECK(data_changes(saved, now) ==
        std::vector<std::string>{"val dataset 0: data/a_val (10 bytes, fingerprint 00bb) → none"});
}

}  // namespace
}  // namespace tessel

// The training loop end to end on a tiny model: determinism, exact resume, and the errors a
// user meets with bad data or a mismatched checkpoint.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/io/file.h"
#include "core/io/temp_dir.h"
#include "data/indexed_dataset.h"
#include "tests/train/local_trainer.h"

using namespace tessel;
namespace fs = std::filesystem;

namespace {

// A byte-level dataset of a few repeated sentences (learnable, so the loss falls).
void write_dataset(const std::string& prefix, int32_t bad_token = -1) {
  IndexedDatasetWriter w(prefix, DType::U16);
  const std::string docs[] = {"the quick brown fox jumps over the lazy dog. ",
                              "pack my box with five dozen liquor jugs. ", "how vexingly quick daft zebras jump! "};
  for (int rep = 0; rep < 20; ++rep) {
    for (const std::string& d : docs) {
      std::vector<int32_t> ids(d.begin(), d.end());
      ids.push_back(256);
      if (bad_token >= 0 && rep == 7) ids[3] = bad_token;
      w.add_document(ids);
    }
  }
  w.finish();
}

Config tiny_run(const std::string& dir, const std::string& arch, int64_t steps) {
  std::string yaml = "run: {out_dir: " + dir + "/run, steps: " + std::to_string(steps) +
                     ", log_every: 5, seed: 3, threads: 2}\n"
                     "model: {arch: " +
                     arch +
                     ", vocab_size: 257, seq_len: 16, layers: 2, d_model: 32, heads: 4, kv_heads: 2, ffn_dim: 64}\n"
                     "batch: {global: 4, micro: 2}\n"
                     "optim: {lr: 3.0e-3, schedule: cosine, warmup_steps: 2}\n"
                     "data: {train: [" +
                     dir + "/d_train], val: " + dir +
                     "/d_train}\n"
                     "checkpoint: {every: 0, keep: 5, resume: auto}\n"
                     "logging: {tensorboard: false}\n";
  return parse_config(yaml, "tiny");
}

}  // namespace

TEST_CASE("the same config twice gives bitwise the same loss curve", "[cpu][train]") {
  TempDir dir("tessel_train");
  write_dataset(dir.path() + "/d_train");
  Config a = tiny_run(dir.path() + "/a", "llama", 8);
  a.data.train[0].path = dir.path() + "/d_train";
  a.data.val = a.data.train[0].path;
  Config b = a;
  b.run.out_dir = dir.path() + "/b/run";
  const TrainSummary sa = LocalTrainer(a).run();
  const TrainSummary sb = LocalTrainer(b).run();
  REQUIRE(sa.losses.size() == 8);
  CHECK(sa.losses == sb.losses);  // bitwise: exact double equality
  CHECK(sa.losses.back() < sa.losses.front());
}

TEST_CASE("20 steps straight equal 10 steps, save, resume, 10 steps — bitwise", "[cpu][train][checkpoint]") {
  TempDir dir("tessel_resume");
  write_dataset(dir.path() + "/d_train");
  for (const std::string arch : {"gpt2", "llama"}) {
    INFO(arch);
    Config full = tiny_run(dir.path() + "/" + arch + "_straight", arch, 20);
    full.data.train[0].path = dir.path() + "/d_train";
    full.data.val = "";
    // decay_steps fixes the schedule's length, so a run told to stop at step 10 follows the
    // same learning rates as the 20-step run.
    full.optim.decay_steps = 18;
    const TrainSummary straight = LocalTrainer(full).run();

    Config first = full;
    first.run.out_dir = dir.path() + "/" + arch + "_resumed";
    first.run.steps = 10;
    LocalTrainer(first).run();
    Config second = full;
    second.run.out_dir = first.run.out_dir;  // resume: auto finds step_00000010 there
    LocalTrainer t2(second);
    CHECK(t2.state().step == 10);
    CHECK(t2.state().consumed_samples == 40);
    const TrainSummary resumed = t2.run();
    REQUIRE(straight.losses.size() == 20);
    REQUIRE(resumed.losses.size() == 10);
    for (size_t i = 0; i < 10; ++i) CHECK(resumed.losses[i] == straight.losses[10 + i]);
    // And the final weights are the same bits.
    const Tensor p2 = t2.model().parameters().params();
    LocalTrainer t3(full);  // reopens the straight run's final checkpoint
    REQUIRE(t3.state().step == 20);
    const Tensor p3 = t3.model().parameters().params();
    CHECK(std::memcmp(p2.raw(), p3.raw(), p2.nbytes()) == 0);
  }
}

TEST_CASE("asynchronous saves during training write the same checkpoints as synchronous ones",
          "[cpu][train][checkpoint]") {
  // The background thread writes step 4's file while steps 5.. change the weights it was copied
  // from: the checkpoint must hold step 4's values, byte for byte those of a synchronous save.
  TempDir dir("tessel_async_save");
  write_dataset(dir.path() + "/d_train");
  Config sync = tiny_run(dir.path() + "/sync", "llama", 8);
  sync.data.train[0].path = dir.path() + "/d_train";
  sync.data.val = "";
  sync.checkpoint.every = 4;
  sync.checkpoint.keep = 5;
  Config async = sync;
  async.run.out_dir = dir.path() + "/async";
  async.checkpoint.async = true;
  const TrainSummary a = LocalTrainer(sync).run();
  const TrainSummary b = LocalTrainer(async).run();
  REQUIRE(a.losses.size() == 8);
  CHECK(a.losses == b.losses);
  for (const char* step : {"step_00000004", "step_00000008"}) {
    INFO(step);
    const std::string one = read_file(sync.run.out_dir + "/checkpoints/" + step + "/rank_00000.safetensors");
    const std::string two = read_file(async.run.out_dir + "/checkpoints/" + step + "/rank_00000.safetensors");
    CHECK(one == two);
  }
}

TEST_CASE("a missing dataset is a clear error naming the path", "[cpu][train][errors]") {
  TempDir dir("tessel_missing");
  Config c = tiny_run(dir.path(), "gpt2", 2);
  c.data.train[0].path = dir.path() + "/nope";
  try {
    LocalTrainer t(c);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.message(), Catch::Contains(dir.path() + "/nope"));
    CHECK_THAT(e.message(), Catch::Contains("data prepare"));
  }
}

TEST_CASE("a token id >= vocab_size is a clear error naming the dataset and the token", "[cpu][train][errors]") {
  TempDir dir("tessel_vocab");
  write_dataset(dir.path() + "/d_train", 300);
  Config c = tiny_run(dir.path(), "gpt2", 50);
  c.data.val = "";
  try {
    LocalTrainer(c).run();
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.message(), Catch::Contains("300"));
    CHECK_THAT(e.message(), Catch::Contains("257"));
    CHECK_THAT(e.message(), Catch::Contains(dir.path() + "/d_train"));
  }
}

TEST_CASE("resuming from a checkpoint of another model shape names the tensor and both shapes",
          "[cpu][train][errors][checkpoint]") {
  TempDir dir("tessel_shape");
  write_dataset(dir.path() + "/d_train");
  Config c = tiny_run(dir.path(), "gpt2", 2);
  LocalTrainer(c).run();
  Config wider = c;
  wider.run.steps = 4;
  wider.model.d_model = 64;
  try {
    LocalTrainer t(wider);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.message(), Catch::Contains("transformer."));
    CHECK_THAT(e.message(), Catch::Contains("[257, 32]"));
    CHECK_THAT(e.message(), Catch::Contains("[257, 64]"));
    CHECK_THAT(e.message(), Catch::Contains("different model shape"));
  }
}

TEST_CASE("non-finite steps are skipped and logged, and too many in a row stop the run", "[cpu][train][errors]") {
  TempDir dir("tessel_nan");
  write_dataset(dir.path() + "/d_train");
  Config c = tiny_run(dir.path(), "gpt2", 20);
  c.data.val = "";
  c.optim.lr = 1e30;  // the first update blows the weights up; every later loss is inf/nan
  c.optim.schedule = LrSchedule::kConstant;
  c.optim.warmup_steps = 0;
  c.optim.grad_clip = 0;
  c.optim.max_skipped_steps = 3;
  LocalTrainer t(c);
  try {
    t.run();
    FAIL("expected the run to stop");
  } catch (const Error& e) {
    CHECK_THAT(e.message(), Catch::Contains("consecutive"));
    CHECK_THAT(e.message(), Catch::Contains("non-finite"));
    CHECK_THAT(e.message(), Catch::Contains("optim.lr"));
  }
  // Steps were skipped (and logged) before the stop: the guard counted them.
  std::ifstream metrics(c.run.out_dir + "/metrics.jsonl");
  std::string line;
  int skipped = 0;
  while (std::getline(metrics, line)) skipped += line.find("\"skipped\":1") != std::string::npos;
  CHECK(skipped == 3);
}

TEST_CASE("resume: auto skips a damaged newest checkpoint for the previous one, loudly", "[cpu][train][checkpoint]") {
  TempDir dir("tessel_fallback");
  write_dataset(dir.path() + "/d_train");
  Config c = tiny_run(dir.path(), "llama", 8);
  c.data.val = "";
  c.checkpoint.every = 4;
  c.optim.decay_steps = 10;
  LocalTrainer(c).run();  // writes step 4 and step 8
  const std::string root = c.run.out_dir + "/checkpoints";
  {
    std::fstream f(root + "/step_00000008/rank_00000.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-8, std::ios::end);
    f.write("garbage!", 8);
  }
  Config more = c;
  more.run.steps = 10;
  {
    LocalTrainer t(more);
    CHECK(t.state().step == 4);  // fell back to step 4
  }                              // one run at a time in an out_dir: this one ends before the next starts
  // An explicit path to the damaged checkpoint is an error, not a silent fallback.
  Config exact = more;
  exact.checkpoint.resume = ResumeMode::kPath;
  exact.checkpoint.resume_path = root + "/step_00000008";
  CHECK_THROWS_WITH(LocalTrainer(exact), Catch::Contains("damaged"));
}

TEST_CASE("a resumed run continues metrics.jsonl without repeating steps", "[cpu][train]") {
  TempDir dir("tessel_metrics");
  write_dataset(dir.path() + "/d_train");
  Config c = tiny_run(dir.path(), "gpt2", 6);
  c.data.val = "";
  c.optim.decay_steps = 10;
  c.checkpoint.every = 3;
  LocalTrainer(c).run();
  // Resume from step 3 (the step-6 checkpoint removed), run to 8.
  fs::remove_all(c.run.out_dir + "/checkpoints/step_00000006");
  Config more = c;
  more.run.steps = 8;
  LocalTrainer(more).run();
  std::ifstream in(c.run.out_dir + "/metrics.jsonl");
  std::string line;
  std::vector<int> steps;
  while (std::getline(in, line)) steps.push_back(std::stoi(line.substr(line.find(':') + 1)));
  CHECK(steps == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8});
}

TEST_CASE("a second run writing the same run.out_dir or checkpoint.dir is refused at start, naming the first",
          "[cpu][train][errors]") {
  TempDir dir("tessel_two_runs");
  write_dataset(dir.path() + "/d_train");
  Config c = tiny_run(dir.path(), "gpt2", 2);
  c.data.val = "";
  // Another out_dir, but the first run's checkpoint root as checkpoint.dir.
  Config other = c;
  other.run.out_dir = dir.path() + "/other";
  other.checkpoint.dir = c.run.out_dir + "/checkpoints";
  const std::string holder = "is in use by another run: pid " + std::to_string(::getpid()) + " on host ";
  {
    LocalTrainer first(c);
    CHECK_THROWS_WITH(LocalTrainer(c), Catch::StartsWith("run.out_dir " + c.run.out_dir + " " + holder) &&
                                           Catch::Contains("hint: use another run.out_dir, or stop that run first"));
    CHECK_THROWS_WITH(LocalTrainer(other),
                      Catch::StartsWith("checkpoint.dir " + other.checkpoint.dir + " " + holder) &&
                          Catch::Contains("hint: use another checkpoint.dir, or stop that run first"));
    CHECK_FALSE(fs::exists(other.run.out_dir + "/metrics.jsonl"));  // the refused run wrote nothing
    first.run();
  }
  // The first run is over: its locks went with it.
  CHECK(LocalTrainer(c).state().step == 2);
  CHECK(LocalTrainer(other).state().step == 2);  // resumes the first run's checkpoint, which it now writes
}

TEST_CASE("an unwritable checkpoint directory fails before training, naming the key", "[cpu][train][errors]") {
  TempDir dir("tessel_unwritable");
  write_dataset(dir.path() + "/d_train");
  Config c = tiny_run(dir.path(), "gpt2", 2);
  c.checkpoint.dir = "/proc/tessel_cannot_write_here";
  CHECK_THROWS_WITH(LocalTrainer(c), Catch::Contains("checkpoint.dir"));
}

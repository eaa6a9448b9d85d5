// Config parsing, presets, overrides, validation and the to_yaml round trip (core/config/config.h).
#include "core/config/config.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/config/preset.h"
#include "core/config/suggest.h"
#include "core/error.h"

namespace tessel {
namespace {

using Catch::Contains;

Config parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_config(text, "cfg.yaml", overrides);
}

std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse(text, overrides);
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

std::string validation_error(const Config& config) {
  try {
    validate_config(config);
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

TEST_CASE("an empty config gives the defaults, which are GPT-2 124M shaped", "[config]") {
  const Config c = parse("");
  CHECK(c.model.arch == Arch::kGpt2);
  CHECK(c.model.layers == 12);
  CHECK(c.model.kv_heads == 12);
  CHECK(c.model.ffn_dim == 3072);
  CHECK(c.parallel.dp == 0);
  CHECK(c.source == "cfg.yaml");
  CHECK(c.origins.empty());
}

TEST_CASE("values of every type are read", "[config]") {
  const Config c = parse(R"(
run: {name: demo, seed: 18446744073709551615, steps: 0, device: cpu, threads: 2}
model: {layers: 2, d_model: 64, heads: 4, norm_eps: 1.0e-6, bias: no, tie_embeddings: true}
parallel: {dp: 4, zero: 1, sequence_parallel: on}
precision: {compute: bf16, loss_scale: 1024}
optim: {lr: 6e-4, schedule: wsd, decay_steps: 0}
data: {val: data/val, tokenizer: gpt2, tokenizer_dir: }
checkpoint: {resume: none, async: yes}
)");
  CHECK(c.run.name == "demo");
  CHECK(c.run.seed == std::numeric_limits<uint64_t>::max());
  CHECK(c.run.steps == 0);
  CHECK(c.run.device == RunDevice::kCpu);
  CHECK(c.run.threads == 2);
  CHECK(c.model.d_model == 64);
  CHECK(c.model.ffn_dim == 256);  // gpt2: 4·d_model when unset
  CHECK(c.model.norm_eps == 1e-6);
  CHECK_FALSE(c.model.bias);
  CHECK(c.parallel.dp == 4);
  CHECK(c.parallel.zero == ZeroStage::k1);
  CHECK(c.parallel.sequence_parallel);
  CHECK(c.precision.compute == Precision::kBf16);
  CHECK(c.precision.loss_scale == 1024.0);
  CHECK(c.optim.lr == 6e-4);
  CHECK(c.data.val == "data/val");
  CHECK(c.data.tokenizer_dir.empty());
  CHECK(c.checkpoint.resume == ResumeMode::kNone);
  CHECK(c.checkpoint.async);
  CHECK(c.origins.at("model.layers") == "cfg.yaml:3:17");
}

TEST_CASE("a YAML syntax error names file, line and column", "[config]") {
  const std::string message = error_of("run:\n  name: demo\nmodel:\n  layers: [1, 2\n");
  CHECK_THAT(message, Contains("YAML syntax error: "));
  CHECK(message.rfind("cfg.yaml:5:1: ", 0) == 0);  // the list is still open at the end

  CHECK_THAT(error_of("run:\n  name: a\n   steps: 3\n"),
             Contains("cfg.yaml:3:9: YAML syntax error: illegal map value"));
}

TEST_CASE("the top level must be a map of sections", "[config]") {
  CHECK_THAT(error_of("- run\n- model\n"),
             Contains("cfg.yaml:1:1: expected a map of sections") && Contains("found a list"));
}

TEST_CASE("an unknown key names its place and the closest valid key", "[config]") {
  const std::string message = error_of("model:\n  layers: 2\n  layres: 4\n");
  CHECK_THAT(message, Contains("cfg.yaml:3:3: unknown key 'model.layres'"));
  CHECK_THAT(message, Contains("did you mean 'model.layers'?"));
  CHECK_THAT(message, Contains("valid keys in 'model': arch, vocab_size, seq_len"));

  CHECK_THAT(
      error_of("run: {}\nmodle: {layers: 2}\n"),
      Contains("cfg.yaml:2:1: unknown key 'modle'; did you mean 'model'?") && Contains("valid sections: run, model"));
  // A key in the wrong section is pointed to the right one.
  CHECK_THAT(error_of("model:\n  lr: 0.1\n"),
             Contains("cfg.yaml:2:3: unknown key 'model.lr'; did you mean 'optim.lr'?"));
  CHECK_THAT(error_of("steps: 10\n"), Contains("did you mean 'run.steps'?"));
  // Far from everything: no guess, but the list of valid keys.
  const std::string far = error_of("optim:\n  zzzzzzzzzzzz: 1\n");
  CHECK_THAT(far, !Contains("did you mean") && Contains("valid keys in 'optim': lr, min_lr"));
}

TEST_CASE("a duplicate key is an error that points at both", "[config]") {
  CHECK_THAT(error_of("model:\n  layers: 2\n  layers: 3\n"),
             Contains("cfg.yaml:3:11: duplicate key 'model.layers' (first set at cfg.yaml:2:3)"));
}

TEST_CASE("a wrong type names place, key, value found and type expected", "[config]") {
  CHECK_THAT(error_of("model:\n  layers: abc\n"),
             Contains("cfg.yaml:2:11: model.layers: expected an integer, found 'abc'"));
  CHECK_THAT(error_of("parallel:\n  tp: 1.5\n"),
             Contains("cfg.yaml:2:7: parallel.tp: expected an integer, found '1.5'"));
  CHECK_THAT(error_of("model:\n  bias: maybe\n"),
             Contains("cfg.yaml:2:9: model.bias: expected true or false, found 'maybe'"));
  CHECK_THAT(error_of("model:\n  - layers\n  - heads\n"),
             Contains("cfg.yaml:2:3: model: expected a map of keys (arch, vocab_size") && Contains("found a list"));
  CHECK_THAT(error_of("optim:\n  lr: [1, 2]\n"), Contains("cfg.yaml:2:7: optim.lr: expected a number, found a list"));
  CHECK_THAT(error_of("optim:\n  lr: fast\n"), Contains("optim.lr: expected a number, found 'fast'"));
  CHECK_THAT(error_of("run:\n  seed: -1\n"), Contains("run.seed: expected a non-negative integer, found '-1'"));
  CHECK_THAT(error_of("run:\n  name: {a: 1}\n"), Contains("run.name: expected a string, found a map"));
  CHECK_THAT(error_of("model:\n  layers:\n"),
             Contains("cfg.yaml:2:3: model.layers: expected an integer, found no value"));
  CHECK_THAT(error_of("parallel:\n  dp: many\n"),
             Contains("parallel.dp: expected 'auto' or a positive integer, found 'many'"));
  CHECK_THAT(error_of("precision:\n  loss_scale: -8\n"),
             Contains("cfg.yaml:2:15: precision.loss_scale: expected 'dynamic' or a positive "
                      "number, found '-8'"));
  CHECK_THAT(error_of("run:\n  threads: 99999999999\n"), Contains("run.threads: expected a 32-bit integer"));
}

TEST_CASE("enumerations list their valid values", "[config]") {
  CHECK_THAT(error_of("model:\n  norm: batchnorm\n"),
             Contains("cfg.yaml:2:9: model.norm: invalid value 'batchnorm'; valid values: "
                      "layernorm, rmsnorm"));
  CHECK_THAT(error_of("model:\n  arch: lama\n"),
             Contains("model.arch: invalid value 'lama'; valid values: gpt2, llama; did you "
                      "mean 'llama'?"));
  CHECK_THAT(error_of("optim:\n  schedule: cosin\n"),
             Contains("valid values: constant, linear, cosine, wsd; did you mean 'cosine'?"));
  CHECK_THAT(error_of("parallel:\n  zero: 3\n"), Contains("parallel.zero: invalid value '3'; valid values: 0, 1, 2"));
  CHECK_THAT(error_of("precision:\n  compute: fp8\n"), Contains("valid values: fp32, bf16, fp16"));
  CHECK_THAT(error_of("data:\n  tokenizer: sentencepiece\n"), Contains("valid values: bytes, gpt2"));
  CHECK_THAT(error_of("run:\n  device: tpu\n"), Contains("valid values: auto, cpu, cuda"));
  CHECK_THAT(error_of("parallel:\n  schedule: zb\n"), Contains("valid values: gpipe, 1f1b, interleaved"));
  CHECK_THAT(error_of("parallel:\n  recompute: some\n"), Contains("valid values: none, selective, full"));
  CHECK_THAT(error_of("model:\n  activation: relu\n"), Contains("valid values: gelu, swiglu"));
  CHECK_THAT(error_of("model:\n  position: alibi\n"), Contains("valid values: learned, rope"));
  CHECK_THAT(error_of("checkpoint:\n  resume: \"\"\n"),
             Contains("cfg.yaml:2:11: checkpoint.resume must not be empty; valid values: auto, "
                      "none, or the path of a checkpoint"));
  const Config resumed = parse("checkpoint:\n  resume: runs/x/step_00000010\n");
  CHECK(resumed.checkpoint.resume == ResumeMode::kPath);
  CHECK(resumed.checkpoint.resume_path == "runs/x/step_00000010");
  CHECK(parse("checkpoint:\n  resume: auto\n").checkpoint.resume_path.empty());
}

TEST_CASE("arch llama presets the LLaMA knobs", "[config]") {
  const Config c = parse("model:\n  arch: llama\n  d_model: 4096\n  heads: 32\n");
  CHECK(c.model.norm == Norm::kRmsNorm);
  CHECK(c.model.activation == Activation::kSwiGlu);
  CHECK(c.model.position == Position::kRope);
  CHECK_FALSE(c.model.bias);
  CHECK_FALSE(c.model.tie_embeddings);
  CHECK(c.model.kv_heads == 32);
  CHECK(c.model.ffn_dim == 11008);  // LLaMA-7B's FFN width
  CHECK(preset_ffn_dim(Arch::kLlama, 768) == 2048);
  CHECK(preset_ffn_dim(Arch::kLlama, 2048) == 5632);  // int(16384/3) = 5461, rounded up to 256
  CHECK(preset_ffn_dim(Arch::kGpt2, 768) == 3072);
}

TEST_CASE("explicit knobs beat the preset whatever the order of keys", "[config]") {
  // Set before `arch` in the file: still wins.
  const Config c = parse(
      "model:\n  norm: layernorm\n  kv_heads: 4\n  ffn_dim: 1000\n  arch: llama\n"
      "  bias: true\n");
  CHECK(c.model.norm == Norm::kLayerNorm);
  CHECK(c.model.kv_heads == 4);
  CHECK(c.model.ffn_dim == 1000);
  CHECK(c.model.bias);
  CHECK(c.model.activation == Activation::kSwiGlu);  // not set: the preset's
  // gpt2 from a llama-like default is a no-op on explicit knobs too.
  const Config g = parse("model:\n  position: rope\n  arch: gpt2\n  d_model: 512\n  heads: 8\n");
  CHECK(g.model.position == Position::kRope);
  CHECK(g.model.norm == Norm::kLayerNorm);
  CHECK(g.model.ffn_dim == 2048);
  CHECK(g.model.kv_heads == 8);
}

TEST_CASE("data.train takes maps, strings or one path", "[config]") {
  const Config maps = parse("data:\n  train:\n    - {path: data/a, weight: 3}\n    - {path: /abs/b, weight: 1}\n");
  REQUIRE(maps.data.train.size() == 2);
  CHECK(maps.data.train[0].path == "data/a");  // relative paths stay as written
  CHECK(maps.data.train[0].weight == 3.0);
  CHECK(maps.data.train[1].path == "/abs/b");
  CHECK(maps.data.train[1].weight == 1.0);
  // Without weights, each dataset weighs its tokens: the weight stays unset, and so it is written.
  const Config unweighted = parse("data:\n  train:\n    - path: data/a\n    - data/b\n");
  CHECK_FALSE(unweighted.data.train[0].weight.has_value());
  CHECK_FALSE(unweighted.data.train[1].weight.has_value());
  CHECK_THAT(to_yaml(unweighted), Contains("- {path: data/a}"));
  CHECK_FALSE(parse(to_yaml(unweighted)).data.train[1].weight.has_value());
  // Weights are relative: all or none.
  CHECK_THAT(error_of("data:\n  train:\n    - {path: data/a, weight: 3}\n    - path: /abs/b\n"),
             Contains("cfg.yaml:3:5: data.train[0] has weight but data.train[1] ('/abs/b') has none; hint: give every "
                      "dataset a weight, or none"));

  const Config strings = parse("data:\n  train: [x, y]\n");
  REQUIRE(strings.data.train.size() == 2);
  CHECK(strings.data.train[1].path == "y");

  const Config single = parse("data:\n  train: shards/fineweb_train_*.bin\n");
  REQUIRE(single.data.train.size() == 1);
  CHECK(single.data.train[0].path == "shards/fineweb_train_*.bin");

  CHECK_THAT(error_of("data:\n  train:\n    - {pth: a}\n"),
             Contains("cfg.yaml:3:8: unknown key 'data.train[0].pth'; did you mean "
                      "'data.train[0].path'?"));
  CHECK_THAT(error_of("data:\n  train:\n    - {weight: 2}\n"), Contains("data.train[0]: a data source needs a 'path'"));
  CHECK_THAT(error_of("data:\n  train:\n    - [a, b]\n"),
             Contains("cfg.yaml:3:7: data.train[0]: expected a path or a {path, weight} map, "
                      "found a list"));
  CHECK_THAT(error_of("data:\n  train:\n    - {path: a, weight: heavy}\n"),
             Contains("data.train[0].weight: expected a number, found 'heavy'"));
  CHECK_THAT(error_of("data:\n  train:\n    - {path: a, weight: 0}\n"),
             Contains("cfg.yaml:3:25: data.train[0].weight must be a positive number, found 0"));
}

TEST_CASE("overrides given with --set win over the file and are type-checked", "[config]") {
  const std::string file = "model:\n  layers: 12\noptim:\n  lr: 3e-4\n";
  const Config c = parse(
      file, {"model.layers=2", "optim.lr=1e-3", "optim.lr=2e-3", "data.train=[x.bin, y.bin]", "run.name = spaced "});
  CHECK(c.model.layers == 2);
  CHECK(c.optim.lr == 2e-3);  // the last override of a key wins
  REQUIRE(c.data.train.size() == 2);
  CHECK(c.data.train[1].path == "y.bin");
  CHECK(c.run.name == "spaced");
  CHECK(c.origins.at("model.layers") == "override 'model.layers=2'");

  // An override can pick the preset; knobs in the file still win over it.
  const Config l = parse("model:\n  norm: layernorm\n", {"model.arch=llama"});
  CHECK(l.model.norm == Norm::kLayerNorm);
  CHECK(l.model.position == Position::kRope);
  // And replace a whole section.
  CHECK(parse(file, {"model={layers: 3}"}).model.layers == 3);
}

TEST_CASE("a bad override names the override, not a file line", "[config]") {
  CHECK_THAT(error_of("", {"model.layers"}), Contains("override 'model.layers': no '=' found; expected KEY=VALUE"));
  CHECK_THAT(error_of("", {"model.layres=2"}),
             Contains("override 'model.layres=2': unknown key 'model.layres'; did you mean "
                      "'model.layers'?"));
  CHECK_THAT(error_of("", {"optm.lr=2"}), Contains("override 'optm.lr=2': unknown key 'optm'; did you mean 'optim'?"));
  CHECK_THAT(error_of("model:\n  layers: 2\n", {"model.layers=two"}),
             Contains("override 'model.layers=two': model.layers: expected an integer, found "
                      "'two'"));
  CHECK_THAT(error_of("", {"data.train=[a, b"}),
             Contains("override 'data.train=[a, b': YAML syntax error in the value"));
  CHECK_THAT(error_of("", {"a.b.c=1"}), Contains("must be SECTION.KEY"));
  CHECK_THAT(error_of("model: [1]\n", {"model.layers=2"}),
             Contains("cannot set 'model.layers': 'model' at cfg.yaml:1:8 is a list"));
  // Validation errors point at the override too.
  CHECK_THAT(error_of("", {"model.kv_heads=5"}),
             Contains("override 'model.kv_heads=5': heads (12) must be divisible by kv_heads (5)"));
}

TEST_CASE("validation names keys, values and a fix", "[config]") {
  CHECK_THAT(error_of("model:\n  heads: 12\n  kv_heads: 5\n"),
             Contains("cfg.yaml:3:13: heads (12) must be divisible by kv_heads (5); valid "
                      "kv_heads: 1, 2, 3, 4, 6, 12"));
  CHECK_THAT(error_of("model:\n  d_model: 100\n  heads: 12\n"),
             Contains("cfg.yaml:2:12: model.d_model (100) must be divisible by model.heads (12)") &&
                 Contains("valid heads: 1, 2, 4, 5, 10, 20, 25, 50, 100"));
  CHECK_THAT(error_of("model:\n  arch: llama\n  d_model: 96\n  heads: 32\n"),
             Contains("head_dim = d_model / heads must be even, found 96 / 32 = 3"));
  CHECK_THAT(error_of("batch:\n  global: 10\n  micro: 4\n"),
             Contains("cfg.yaml:2:11: batch.global (10) must be divisible by batch.micro (4); "
                      "e.g. batch.global: 8 or 12") &&
                 Contains("dp is not known until launch"));
  CHECK_THAT(error_of("model:\n  layers: 0\n"), Contains("cfg.yaml:2:11: model.layers must be at least 1, found 0"));
  CHECK_THAT(error_of("parallel:\n  tp: 0\n"), Contains("parallel.tp must be at least 1"));
  CHECK_THAT(error_of("parallel:\n  tp: 5\n"),
             Contains("must be divisible by parallel.tp (5)") && Contains("valid tp: 1, 2, 3, 4, 6, 12"));
  CHECK_THAT(error_of("model:\n  kv_heads: 4\nparallel:\n  tp: 3\n"),
             Contains("model.heads (12) and model.kv_heads (4) must be divisible by parallel.tp (3)") &&
                 Contains("valid tp: 1, 2, 4"));
  // LLaMA-style separate k/v projections share kv heads among ranks; GPT-2's fused c_attn cannot.
  CHECK(error_of(
            "model:\n  arch: llama\n  vocab_size: 50304\n  heads: 8\n  kv_heads: 2\n  d_model: 512\n  ffn_dim: 1024\n"
            "parallel:\n  tp: 4\n") == "(no error)");
  CHECK_THAT(error_of("model:\n  arch: gpt2\n  vocab_size: 50304\n  heads: 8\n  kv_heads: 2\n  d_model: 512\n"
                      "parallel:\n  tp: 4\n"),
             Contains("model.heads (8) and model.kv_heads (2) must be divisible by parallel.tp (4)"));
  CHECK_THAT(error_of("model:\n  ffn_dim: 3070\nparallel:\n  tp: 4\n"),
             Contains("model.ffn_dim (3070) must be divisible by parallel.tp (4); valid tp: 1, 2"));
  CHECK_THAT(error_of("parallel:\n  tp: 2\n"),  // GPT-2's 50257 tokens, unpadded
             Contains("model.vocab_size (50257) must be divisible by parallel.tp (2)") && Contains("valid tp: 1;") &&
                 Contains("pad the vocabulary"));
  CHECK_THAT(error_of("model:\n  vocab_size: 50304\n  seq_len: 1022\nparallel:\n  tp: 4\n  sequence_parallel: true\n"),
             Contains("model.seq_len (1022) must be divisible by parallel.tp (4)"));
  CHECK(error_of("model:\n  vocab_size: 50304\nparallel:\n  tp: 4\n  sequence_parallel: true\n") == "(no error)");
  CHECK_THAT(error_of("parallel:\n  pp: 5\n"), Contains("model.layers (12) must be divisible by parallel.pp (5)"));
  CHECK_THAT(error_of("optim:\n  beta1: 1.0\n"), Contains("cfg.yaml:2:10: optim.beta1 must be in [0, 1), found 1"));
  CHECK_THAT(error_of("optim:\n  beta2: -0.1\n"), Contains("optim.beta2 must be in [0, 1)"));
  CHECK_THAT(error_of("optim:\n  lr: 0\n"), Contains("optim.lr must be a positive number, found 0"));
  CHECK_THAT(error_of("optim:\n  lr: 1e-4\n  min_lr: 1e-3\n"),
             Contains("cfg.yaml:3:11: optim.min_lr (0.001) must not exceed optim.lr (0.0001)"));
  // A warmup longer than the run (a short smoke run of a real config) is clamped to the run.
  CHECK(error_of("run:\n  steps: 10\noptim:\n  warmup_steps: 20\n") == "(no error)");
  CHECK(parse("run:\n  steps: 10\noptim:\n  warmup_steps: 20\n").optim.warmup_steps == 10);
  CHECK_THAT(error_of("run:\n  steps: -1\n"), Contains("run.steps must be at least 0, found -1"));
  CHECK_THAT(error_of("parallel:\n  schedule: interleaved\n"), Contains("needs parallel.virtual_stages >= 2"));
  CHECK_THAT(error_of("parallel:\n  pp: 16\n"),
             Contains("parallel.pp (16) x parallel.virtual_stages (1) = 16 pipeline stages exceed model.layers (12)"));
  CHECK_THAT(error_of("parallel:\n  schedule: interleaved\n  virtual_stages: 2\n"),
             Contains("needs parallel.pp >= 2, found 1"));
  CHECK_THAT(error_of("parallel:\n  pp: 4\n  pipeline_split: ends_as_layers\n"),
             Contains("splits model.layers + 2 (14: the embedding and the head weigh as a layer each)") &&
                 Contains("pp x virtual_stages among 2, 7, or pipeline_split: even"));
  CHECK(error_of("parallel:\n  pp: 7\n  pipeline_split: ends_as_layers\n") == "(no error)");
  CHECK_THAT(error_of("parallel:\n  pipeline_split: weighted\n"), Contains("valid values: even, ends_as_layers"));
  // Each stage's layers, listed: for stages on GPUs of unequal speed.
  const Config listed = parse("parallel:\n  pp: 4\n  pipeline_split: [2, 2, 4, 4]\n");
  CHECK(listed.parallel.pipeline_split.counts == std::vector<int64_t>{2, 2, 4, 4});
  CHECK_THAT(to_yaml(listed), Contains("pipeline_split: [2, 2, 4, 4]"));
  CHECK(parse(to_yaml(listed)).parallel.pipeline_split == listed.parallel.pipeline_split);
  CHECK(parse("parallel:\n  pp: 2\n", {"parallel.pipeline_split=[5, 7]"}).parallel.pipeline_split.counts ==
        std::vector<int64_t>{5, 7});
  // A name after a list (an override) drops the list.
  CHECK(parse("parallel:\n  pp: 2\n  pipeline_split: [5, 7]\n", {"parallel.pipeline_split=even"})
            .parallel.pipeline_split.counts.empty());
  CHECK_THAT(error_of("parallel:\n  pp: 4\n  pipeline_split: [2, 2, 8]\n"),
             Contains("cfg.yaml:3:19: parallel.pipeline_split lists 3 stages, but parallel.pp (4) x "
                      "parallel.virtual_stages (1) = 4"));
  CHECK_THAT(error_of("parallel:\n  pp: 2\n  pipeline_split: [2, 2]\n"),
             Contains("parallel.pipeline_split's layers add up to 4, but model.layers is 12"));
  CHECK_THAT(error_of("parallel:\n  pp: 2\n  pipeline_split: [0, 12]\n"),
             Contains("parallel.pipeline_split: expected even, ends_as_layers, or a list of each pipeline stage's "
                      "layers (positive integers), found"));
  CHECK_THAT(error_of("parallel:\n  pp: 2\n  pipeline_split: []\n"), Contains("an empty list"));
  CHECK_THAT(error_of("parallel:\n  pp: 2\n  pipeline_split: [a, b]\n"), Contains("positive integers"));
  // Unequal shares of the batch, in micro-batches per data-parallel replica.
  const Config shared = parse("batch:\n  global: 24\n  micro: 2\n  shares: [9, 3]\n");
  CHECK(shared.batch.shares == std::vector<int64_t>{9, 3});
  CHECK(parse(to_yaml(shared)).batch.shares == shared.batch.shares);
  CHECK_THAT(to_yaml(Config()), Contains("shares: []"));
  CHECK_THAT(error_of("batch:\n  global: 24\n  micro: 2\n  shares: [9, 2]\n"),
             Contains("cfg.yaml:4:11: batch.shares lists 11 micro-batches of batch.micro (2) = 22 sequences, but "
                      "batch.global is 24"));
  CHECK_THAT(error_of("parallel:\n  dp: 3\nbatch:\n  global: 24\n  micro: 2\n  shares: [9, 3]\n"),
             Contains("batch.shares lists 2 data-parallel replicas, but parallel.dp is 3"));
  CHECK_THAT(error_of("batch:\n  shares: [1.5, 2]\n"), Contains("batch.shares: expected a list of positive integers"));

  // A config built in code has no lines to name, but gets the same checks.
  Config hand;
  hand.model.norm = static_cast<Norm>(7);  // a value no name maps to
  CHECK_THAT(validation_error(hand), Contains("model.norm: invalid value 7; valid values: layernorm, rmsnorm"));
  hand = Config();
  hand.batch.micro = 3;
  CHECK_THAT(validation_error(hand), Contains("batch.global (8) must be divisible by batch.micro (3)"));
  hand = Config();
  hand.precision.loss_scale = -8;
  CHECK_THAT(validation_error(hand), Contains("expected 'dynamic' (0) or a positive number, found -8"));
  CHECK(validation_error(Config()) == "(no error)");
}

TEST_CASE("shapes beyond the bounds are refused before their sizes are computed, naming the key", "[config]") {
  CHECK_THAT(error_of("model:\n  d_model: 99999999999\n"),
             Contains("cfg.yaml:2:12: model.d_model must be at most 16777216, found 99999999999") &&
                 Contains("overflows size arithmetic"));
  CHECK_THAT(error_of("model:\n  vocab_size: 4294967296\n"),
             Contains("model.vocab_size must be at most 2147483647, found 4294967296 (token ids are 32-bit)"));
  CHECK_THAT(error_of("model:\n  layers: 100000\n"), Contains("model.layers must be at most 65536"));
  CHECK_THAT(error_of("parallel:\n  tp: 9999999\n"), Contains("parallel.tp must be at most 1048576"));
  CHECK_THAT(error_of("batch:\n  micro: 2000000000\n  global: 64\n"),
             Contains("batch.micro must be at most 1073741824"));
  // A prime d_model near the bound: the divisor list of the heads error is computed at once.
  CHECK_THAT(error_of("model:\n  d_model: 16777213\n  heads: 12\n  ffn_dim: 64\n"),
             Contains("model.d_model (16777213) must be divisible by model.heads (12)") &&
                 Contains("valid heads: 1, 16777213"));
}

TEST_CASE("buffer sizes that overflow 64-bit arithmetic are refused, naming every setting of the product", "[config]") {
  // Each key within its bound, the attention scores of a micro-batch beyond 2^63 bytes.
  CHECK_THAT(error_of("model:\n  seq_len: 16777216\n  heads: 4096\n  d_model: 65536\nbatch:\n  micro: 1024\n"
                      "  global: 1024\n"),
             Contains("the attention scores of a micro-batch would take batch.micro x model.heads x model.seq_len "
                      "x model.seq_len x 4 bytes = 1024 x 4096 x 16777216 x 16777216 x 4") &&
                 Contains("hint: lower batch.micro, model.heads, model.seq_len"));
  CHECK_THAT(error_of("model:\n  layers: 65536\n  d_model: 16777216\n  heads: 16\n  ffn_dim: 16777216\n"),
             Contains("the embedding's weights, gradients and AdamW moments would take model.vocab_size x "
                      "model.d_model") ||
                 Contains("model.layers x model.d_model"));
  // Shapes that fit are not refused: a 1T-parameter-class config passes.
  Config big;
  big.model.layers = 128;
  big.model.d_model = 25600;
  big.model.heads = 160;
  big.model.kv_heads = 160;
  big.model.ffn_dim = 4 * 25600;
  big.model.vocab_size = 51200;
  big.model.seq_len = 2048;
  big.batch.global = 3072;
  big.batch.micro = 1;
  CHECK_NOTHROW(validate_config(big));
}

TEST_CASE("to_yaml round-trips every value exactly", "[config]") {
  Config c = parse("model:\n  arch: llama\n  d_model: 256\n  heads: 8\n  kv_heads: 2\n");
  c.run.name = "name: with \"quotes\", a\ttab and é";
  c.run.out_dir = "null";  // would read back as no value if written plain
  c.run.seed = std::numeric_limits<uint64_t>::max();
  c.optim.lr = 0.1 + 0.2;  // needs all 17 digits
  c.optim.min_lr = 1e-300;
  c.optim.beta2 = 1.0 / 3.0;
  c.model.init_std = 0.02;
  c.parallel.dp = 4;
  c.precision.loss_scale = 65536;
  c.data.train = {{"data/a", 0.7}, {"/abs/b c", 0.3}};
  c.data.val = "";
  c.checkpoint.resume = ResumeMode::kPath;
  c.checkpoint.resume_path = "~";
  const std::string text = to_yaml(c);
  const Config back = parse_config(text, "<round trip>");

  CHECK(to_yaml(back) == text);
  CHECK(back.run.name == c.run.name);
  CHECK(back.run.out_dir == "null");
  CHECK(back.run.seed == c.run.seed);
  CHECK(same_bits(back.optim.lr, c.optim.lr));
  CHECK(same_bits(back.optim.min_lr, c.optim.min_lr));
  CHECK(same_bits(back.optim.beta2, c.optim.beta2));
  CHECK(back.model.arch == Arch::kLlama);
  CHECK(back.model.kv_heads == 2);
  CHECK(back.model.ffn_dim == c.model.ffn_dim);
  CHECK(back.model.norm == Norm::kRmsNorm);
  CHECK(back.parallel.dp == 4);
  CHECK(back.precision.loss_scale == 65536.0);
  REQUIRE(back.data.train.size() == 2);
  CHECK(back.data.train[1].path == "/abs/b c");
  CHECK(same_bits(back.data.train[0].weight.value_or(0), 0.7));
  CHECK(back.checkpoint.resume == ResumeMode::kPath);
  CHECK(back.checkpoint.resume_path == "~");
  // Short values stay short.
  CHECK_THAT(text, Contains("  init_std: 0.02\n") && Contains("  lr: 0.30000000000000004\n"));
  // dp auto and an empty train list survive too.
  const Config defaults;
  CHECK(to_yaml(parse_config(to_yaml(defaults), "<defaults>")) == to_yaml(defaults));
  CHECK_THAT(to_yaml(defaults), Contains("  dp: auto\n") && Contains("  train: []\n"));
}

TEST_CASE("load_config reads a file and reports a missing one", "[config]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "tessel_config_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "tiny.yaml").string();
  {
    std::ofstream out(path);
    out << "model:\n  layers: 2\n  layres: 3\n";
  }
  CHECK_THROWS_WITH(load_config(path), Contains(path + ":3:3: unknown key 'model.layres'"));
  CHECK(load_config(path, {"model={layers: 4}"}).model.layers == 4);
  CHECK_THROWS_WITH(load_config((dir / "absent.yaml").string()),
                    Contains("config file '" + (dir / "absent.yaml").string() + "' not found") && Contains("hint:"));
  CHECK_THROWS_WITH(load_config(dir.string()), Contains("is a directory"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("edit distance drives the suggestions", "[config]") {
  CHECK(edit_distance("layres", "layers") == 2);
  CHECK(edit_distance("LR", "lr") == 0);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(closest_match("warmup", {"warmup_steps", "decay_steps", "lr"}) == "warmup_steps");
  CHECK(closest_match("qqqq", {"lr", "eps"}).empty());
}

}  // namespace
}  // namespace tessel

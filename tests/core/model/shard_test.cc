// Tensor-parallel shards: every global element on exactly one rank, in the layout a rank's
// layers read, and initialized as in the unsplit model.
#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/param_specs.h"
#include "core/model/shard.h"

using namespace tessel;

TEST_CASE("shard runs partition each parameter for tp 2 and 4", "[cpu][tp]") {
  const Config c = parse_config(
      "model: {arch: gpt2, vocab_size: 64, seq_len: 8, layers: 1, d_model: 16, heads: 4, "
      "kv_heads: 4, ffn_dim: 32}\n",
      "t.yaml");
  const Config l = parse_config(
      "model: {arch: llama, vocab_size: 64, seq_len: 8, layers: 1, d_model: 16, heads: 4, "
      "kv_heads: 2, ffn_dim: 32}\n",
      "t.yaml");
  for (const Config* cfg : {&c, &l}) {
    for (const ParamSpec& spec : transformer_param_specs(cfg->model)) {
      // The LLaMA config's 2 kv heads split over 2 ranks at most.
      for (int tp : cfg == &c ? std::vector<int>{2, 4} : std::vector<int>{2}) {
        INFO(spec.name << " tp " << tp);
        const int64_t n = shape_numel(spec.shape);
        std::vector<int> hits(static_cast<size_t>(n), 0);
        for (int r = 0; r < tp; ++r) {
          int64_t local = 0;
          for (const ShardRun& run : shard_runs(spec, r, tp)) {
            CHECK(run.local == local);  // runs cover the local tensor in order
            local += run.length;
            for (int64_t i = 0; i < run.length; ++i) ++hits[static_cast<size_t>(run.global + i)];
          }
          CHECK(local == shape_numel(local_shape(spec, tp)));
        }
        const int expected = spec.shard_dim < 0 ? tp : 1;  // replicated on every rank, or split
        for (int h : hits) CHECK(h == expected);
      }
    }
  }
}

TEST_CASE("GPT-2's fused c_attn shard holds the rank's q, k and v heads", "[cpu][tp]") {
  ParamSpec s{"c_attn", {2, 12}, 1, InitKind::kNormal, 0.02f, true, {4, 4, 4}};  // [in 2, q|k|v of 4]
  const std::vector<ShardRun> r1 = shard_runs(s, 1, 2);
  // Row 0 of rank 1: q columns 2-3, k columns 6-7, v columns 10-11.
  REQUIRE(r1.size() == 6);
  CHECK(r1[0].global == 2);
  CHECK(r1[1].global == 6);
  CHECK(r1[2].global == 10);
  CHECK(r1[3].global == 12 + 2);
  CHECK(r1[0].length == 2);
  CHECK(local_shape(s, 2) == Shape{2, 6});
  CHECK_THROWS_WITH(local_shape(s, 3), Catch::Contains("does not split over 3"));
}

TEST_CASE("every tensor-parallel degree starts from the same global weights", "[cpu][tp]") {
  const Config c = parse_config(
      "model: {arch: gpt2, vocab_size: 64, seq_len: 8, layers: 2, d_model: 16, heads: 4, "
      "kv_heads: 4, ffn_dim: 32}\n",
      "t.yaml");
  const std::vector<ParamSpec> specs = transformer_param_specs(c.model);
  ParameterStore full(specs);
  full.initialize(5);
  for (int tp : {2, 4}) {
    for (int r = 0; r < tp; ++r) {
      ParameterStore shard(specs, 1, r, tp);
      shard.initialize(5);
      int wrong = 0;
      for (const ParamEntry& e : shard.entries()) {
        const float* whole = full.params().data<float>() + full.entry(e.spec.name).offset;
        const float* mine = shard.params().data<float>() + e.offset;
        for (const ShardRun& run : shard_runs(e.spec, r, tp)) {
          for (int64_t i = 0; i < run.length; ++i) wrong += mine[run.local + i] != whole[run.global + i];
        }
      }
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("key/value heads fewer than the ranks are shared by consecutive ranks", "[cpu][tp]") {
  // 2 kv heads of width 4 over tp 4: ranks 0-1 hold head 0, ranks 2-3 head 1, whole.
  ParamSpec k{"k_proj", {8, 16}, 0, InitKind::kNormal, 0.02f, true, {}, 2};
  CHECK(local_shape(k, 4) == Shape{4, 16});
  CHECK(shard_replicas(k, 4) == 2);
  CHECK(shard_replicas(k, 2) == 1);  // as many heads as ranks: split
  CHECK(shard_runs(k, 1, 4).front().global == 0);
  CHECK(shard_runs(k, 2, 4).front().global == 4 * 16);
  CHECK(shard_runs(k, 3, 4).front().length == 4 * 16);
  ParamSpec norm{"ln", {16}, -1, InitKind::kOnes, 0, false};
  CHECK(shard_replicas(norm, 4) == 4);
  ParamSpec odd{"k_proj", {12, 16}, 0, InitKind::kNormal, 0.02f, true, {}, 3};
  CHECK_THROWS_WITH(local_shape(odd, 4), Catch::Contains("3 heads cannot be shared by 4"));
}

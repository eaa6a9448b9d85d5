#include <algorithm>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/init_rng.h"
#include "core/model/param_specs.h"
#include "core/model/parameters.h"

using namespace tessel;

namespace {
ModelConfig tiny(const std::string& arch) {
  ModelConfig c;
  REQUIRE(parse_name(arch, &c.arch));
  c.vocab_size = 50;
  c.seq_len = 8;
  c.layers = 2;
  c.d_model = 16;
  c.heads = 4;
  c.kv_heads = arch == "llama" ? 2 : 4;
  c.ffn_dim = 24;
  if (arch == "llama") {
    c.norm = Norm::kRmsNorm;
    c.activation = Activation::kSwiGlu;
    c.position = Position::kRope;
    c.bias = false;
    c.tie_embeddings = false;
  }
  return c;
}
}  // namespace

TEST_CASE("a parameter's initial values depend only on seed, name and index, not on buffer order", "[cpu][init]") {
  for (const std::string arch : {"gpt2", "llama"}) {
    std::vector<ParamSpec> specs = transformer_param_specs(tiny(arch));
    std::vector<ParamSpec> reversed(specs.rbegin(), specs.rend());
    ParameterStore a(specs), b(reversed);
    a.initialize(7);
    b.initialize(7);
    REQUIRE(a.entries().front().spec.name == b.entries().back().spec.name);
    REQUIRE(a.entry(specs[1].name).offset != b.entry(specs[1].name).offset);  // really another layout
    for (const ParamSpec& s : specs) {
      const Tensor x = a.param(s.name), y = b.param(s.name);
      INFO(s.name);
      REQUIRE(std::equal(x.data<float>(), x.data<float>() + x.numel(), y.data<float>()));
      // And it is the documented pure function of (seed, name, index).
      CHECK(x.data<float>()[x.numel() - 1] == initial_value(7, s, x.numel() - 1));
    }
    ParameterStore c(specs);
    c.initialize(8);
    CHECK(c.param(specs[0].name).data<float>()[0] != a.param(specs[0].name).data<float>()[0]);
  }
}

TEST_CASE("normal init has the configured spread, norms start at one and biases at zero", "[cpu][init]") {
  ParameterStore s(transformer_param_specs(tiny("gpt2")));
  s.initialize(1);
  const Tensor wte = s.param("transformer.wte.weight");
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < wte.numel(); ++i) {
    sum += wte.data<float>()[i];
    sq += double(wte.data<float>()[i]) * wte.data<float>()[i];
  }
  const double mean = sum / wte.numel(), std_ = std::sqrt(sq / wte.numel() - mean * mean);
  CHECK(std::fabs(mean) < 0.003);
  CHECK(std_ == Approx(0.02).epsilon(0.08));
  CHECK(s.param("transformer.h.1.ln_2.weight").data<float>()[3] == 1.0f);
  CHECK(s.param("transformer.h.0.mlp.c_fc.bias").data<float>()[5] == 0.0f);
}

TEST_CASE("parameter names and shapes follow Hugging Face for GPT-2 and LLaMA", "[cpu][model]") {
  ParameterStore g(transformer_param_specs(tiny("gpt2")));
  CHECK(g.entry("transformer.h.0.attn.c_attn.weight").spec.shape == Shape{16, 48});  // Conv1D [in, out]
  CHECK(g.entry("transformer.h.1.mlp.c_proj.weight").spec.shape == Shape{24, 16});
  CHECK(g.entry("transformer.wpe.weight").spec.shape == Shape{8, 16});
  CHECK_FALSE(g.has("lm_head.weight"));  // tied to wte
  CHECK_FALSE(g.entry("transformer.wte.weight").spec.weight_decay);
  CHECK(g.entry("transformer.h.0.attn.c_attn.weight").spec.weight_decay);
  CHECK_FALSE(g.entry("transformer.h.0.attn.c_attn.bias").spec.weight_decay);

  ParameterStore l(transformer_param_specs(tiny("llama")));
  CHECK(l.entry("model.layers.0.self_attn.q_proj.weight").spec.shape == Shape{16, 16});  // [out, in]
  CHECK(l.entry("model.layers.0.self_attn.k_proj.weight").spec.shape == Shape{8, 16});   // 2 kv heads × 4
  CHECK(l.entry("model.layers.1.mlp.down_proj.weight").spec.shape == Shape{16, 24});
  CHECK(l.entry("model.layers.1.mlp.gate_proj.weight").spec.shard_dim == 0);  // column parallel
  CHECK(l.entry("model.layers.1.mlp.down_proj.weight").spec.shard_dim == 1);  // row parallel
  CHECK(l.has("lm_head.weight"));
  CHECK_FALSE(l.has("model.layers.0.self_attn.q_proj.bias"));
  CHECK_FALSE(l.has("model.norm.bias"));
}

TEST_CASE("philox matches the published known-answer vector", "[cpu][init]") {
  // Random123 kat_vectors: philox4x32_10, counter = key = 0.
  auto r = philox4x32({0, 0, 0, 0}, {0, 0});
  CHECK(r[0] == 0x6627e8d5u);
  CHECK(r[1] == 0xe169c58du);
  CHECK(r[2] == 0xbc57ac4cu);
  CHECK(r[3] == 0x9b00dbd8u);
}

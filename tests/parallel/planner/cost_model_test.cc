// The planner's memory model against hand-computed cases and against what Tessel allocates;
// the enumerator's layouts; its errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/model/model_part.h"
#include "core/model/shard.h"
#include "core/model/transformer.h"
#include "parallel/planner/planner.h"
#include "tests/parallel/mpi_world.h"

using namespace tessel;

namespace {

Config tiny(const std::string& arch, const std::string& precision = "fp32") {
  const std::string heads = arch == "gpt2" ? "heads: 4, kv_heads: 4" : "heads: 4, kv_heads: 2";
  return parse_config("model: {arch: " + arch + ", vocab_size: 64, seq_len: 16, layers: 2, d_model: 32, " + heads +
                          ", ffn_dim: 64}\nbatch: {global: 8, micro: 2}\nprecision: {compute: " + precision + "}\n",
                      "tiny.yaml");
}

PlanLayout layout(int tp, int pp, int dp, ZeroStage zero = ZeroStage::k0, Recompute recompute = Recompute::kNone,
                  int64_t micro = 2) {
  PlanLayout l;
  l.tp = tp;
  l.pp = pp;
  l.dp = dp;
  l.zero = zero;
  l.recompute = recompute;
  l.micro = micro;
  return l;
}

}  // namespace

TEST_CASE("parameter, gradient and optimizer bytes follow ZeRO and the precision", "[cpu][planner]") {
  const HardwareProfile hw = load_hardware("h100-sxm");
  // GPT-2 tiny by hand: wte 64x32 + wpe 16x32 + 2 x (ln 2x32, c_attn 32x96 + 96, c_proj 32x32 + 32,
  // ln 2x32, c_fc 32x64 + 64, c_proj 64x32 + 32) + ln_f 2x32 = 2048 + 512 + 2 x 8544 + 64.
  const double n = 19712;
  CHECK(stage_parameters(tiny("gpt2").model, 1, 1, 1) == 19712);
  PlanEstimate e = estimate_layout(tiny("gpt2"), layout(1, 1, 1), hw);
  CHECK(e.memory.weights == n * 4);
  CHECK(e.memory.gradients == n * 4);
  CHECK(e.memory.optimizer == n * 8);  // m and v; fp32 weights are their own master copy
  e = estimate_layout(tiny("gpt2"), layout(1, 1, 4, ZeroStage::k1), hw);
  CHECK(e.memory.optimizer == n * 8 / 4);
  CHECK(e.memory.gradients == n * 4);
  e = estimate_layout(tiny("gpt2"), layout(1, 1, 4, ZeroStage::k2), hw);
  CHECK(e.memory.gradients == n * 4 + n * 4 / 4);  // the full buffer and ZeRO-2's reduced shard
  e = estimate_layout(tiny("gpt2", "bf16"), layout(1, 1, 4, ZeroStage::k1), hw);
  CHECK(e.memory.weights == n * 2);
  CHECK(e.memory.optimizer == n * 12 / 4);  // master weights, m and v
  // Tensor parallel 2 halves the split weights; norms, positions and row-parallel biases stay.
  const double replicated = 512 + 2 * (4 * 32 + 2 * 32) + 64;
  CHECK(stage_parameters(tiny("gpt2").model, 2, 1, 1) == static_cast<int64_t>((n - replicated) / 2 + replicated));
  // Two stages: the first holds wte, wpe and layer 0 (11104), the second layer 1, ln_f and (tied)
  // its own copy of wte (10656); the larger counts.
  CHECK(stage_parameters(tiny("gpt2").model, 1, 2, 1) == 2048 + 512 + 8544);
}

TEST_CASE("activation memory is what the model allocates, for each recomputation", "[cpu][planner]") {
  const HardwareProfile hw = load_hardware("cpu-local");
  for (const std::string arch : {"gpt2", "llama"}) {
    for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
      INFO(arch << ", recompute " << recompute);
      const Config c = tiny(arch);
      TransformerOptions options(2, 16);
      options.recompute = recompute;
      Transformer model(c.model, options);
      const PlanEstimate e = estimate_layout(c, layout(1, 1, 1, ZeroStage::k0, recompute), hw);
      CHECK(e.memory.activations == static_cast<double>(model.activation_bytes()));
    }
  }
  // 1f1b keeps pp micro-batches on stage 0, gpipe all of them.
  Config c = tiny("llama");
  c.batch.global = 16;  // 8 micro-batches of 2
  PlanLayout one_f = layout(1, 2, 1);
  PlanLayout gpipe = one_f;
  gpipe.schedule = Schedule::kGpipe;
  const double a1 = estimate_layout(c, one_f, hw).memory.activations;
  const double ag = estimate_layout(c, gpipe, hw).memory.activations;
  CHECK(ag == Approx(a1 * 8 / 2));
}

TEST_CASE(
    "MoE and CLA: activation memory is what the model allocates and every expert is held with the active ones "
    "counted in FLOPs",
    "[cpu][planner]") {
  const HardwareProfile hw = load_hardware("cpu-local");
  for (const std::string extra : {"moe: {experts: 4, top_k: 2, shared_experts: 1, expert_ffn_dim: 16}",
                                  "moe: {experts: 4, top_k: 1, shared_experts: 1, shared_gate: true, first_dense: 1}, "
                                  "cla_share: 2"}) {
    const Config c = parse_config(
        "model: {arch: llama, vocab_size: 64, seq_len: 16, layers: 4, d_model: 32, heads: 4, "
        "kv_heads: 2, ffn_dim: 64, " +
            extra + "}\nbatch: {global: 8, micro: 2}\n",
        "tiny-moe.yaml");
    for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
      INFO(extra << ", recompute " << recompute);
      TransformerOptions options(2, 16);
      options.recompute = recompute;
      Transformer model(c.model, options);
      const PlanEstimate e = estimate_layout(c, layout(1, 1, 1, ZeroStage::k0, recompute), hw);
      CHECK(e.memory.activations == static_cast<double>(model.activation_bytes()));
      // Every expert is held; a token passes through top_k of them.
      CHECK(model_parameters(c.model) == model.num_parameters());
      CHECK(model_flops_per_token(c.model) == Approx(model.flops_per_token()).epsilon(1e-12));
      CHECK(model_flops_per_token(c.model) < 6.0 * static_cast<double>(model.num_parameters()));
    }
    // Pipeline stages hold their own layers' parameters (dense, MoE, with or without k/v).
    int64_t sum = 0;
    for (int rank = 0; rank < 2; ++rank) sum += rank_parameters(c.model, 1, 2, 1, {}, rank);
    CHECK(sum == model_parameters(c.model));
    // Expert parallelism: each rank holds what its part's parameter list holds, 1/ep of the
    // routed experts; ZeRO shards their moments over the dp / ep ranks holding the same ones.
    for (const int tp : {1, 2}) {
      for (const int ep : {2, 4}) {
        INFO("tp " << tp << ", ep " << ep);
        int64_t held = 0, experts = 0;
        for (const ParamSpec& spec : part_param_specs(c.model, ModelPart::whole(4), 1, ep)) {
          held += shape_numel(local_shape(spec, tp));
          if (spec.expert >= 0) experts += shape_numel(local_shape(spec, tp));
        }
        CHECK(rank_parameters(c.model, tp, 1, 1, {}, 0, ep) == held);
        CHECK(rank_expert_parameters(c.model, tp, 1, 1, {}, 0, ep) == experts);
        CHECK(experts * ep == rank_expert_parameters(c.model, tp, 1, 1, {}, 0, 1));
        PlanLayout split = layout(tp, 1, 4, ZeroStage::k1);
        split.ep = ep;
        const double replicated = static_cast<double>(held - experts);
        const MemoryBreakdown m = estimate_layout(c, split, hw).memory;
        CHECK(m.optimizer == Approx(8 * (replicated / 4 + static_cast<double>(experts) / (4.0 / ep))));
        // ZeRO-2's shard buffers: the experts' only where more than one rank holds them.
        split.zero = ZeroStage::k2;
        const double shards = replicated / 4 + (ep < 4 ? static_cast<double>(experts) / (4.0 / ep) : 0);
        CHECK(estimate_layout(c, split, hw).memory.gradients == Approx(4 * (static_cast<double>(held) + shards)));
      }
    }
  }
}

TEST_CASE("MoE: ep is searched for MoE models only, and its all-to-all crosses nodes past a node", "[cpu][planner]") {
  const Config moe = parse_config(
      "model: {arch: llama, vocab_size: 64, seq_len: 16, layers: 2, d_model: 32, heads: 4, kv_heads: 2, ffn_dim: 64, "
      "moe: {experts: 8, top_k: 2}}\nbatch: {global: 16, micro: 2}\n",
      "tiny-moe.yaml");
  std::set<int> eps;
  for (const PlanLayout& l : enumerate_layouts(moe, 8, {})) {
    eps.insert(l.ep);
    CHECK(l.dp % l.ep == 0);
  }
  CHECK(eps == std::set<int>{1, 2, 4, 8});
  for (const PlanLayout& l : enumerate_layouts(tiny("llama"), 8, {})) CHECK(l.ep == 1);
  HardwareProfile hw = load_hardware("h100-sxm");
  PlanLayout l = layout(1, 1, 8);
  l.ep = 1;
  CHECK(estimate_layout(moe, l, hw).time.ep_comm == 0);
  l.ep = 8;
  const double inside = estimate_layout(moe, l, hw).time.ep_comm;
  CHECK(inside > 0);
  hw.gpus_per_node = 4;  // the 8 ranks of the group now span two nodes
  CHECK(estimate_layout(moe, l, hw).time.ep_comm > inside);
}

TEST_CASE("the enumerator lists only valid layouts and holds fixed knobs", "[cpu][planner]") {
  const Config c = tiny("llama");  // 4 heads, 2 kv heads, 2 layers, batch 8
  const std::vector<PlanLayout> all = enumerate_layouts(c, 8, {});
  REQUIRE(!all.empty());
  for (const PlanLayout& l : all) {
    INFO(l.describe());
    CHECK(l.tp * l.pp * l.dp == 8);
    CHECK(4 % l.tp == 0);
    CHECK(2 % (l.pp * l.virtual_stages) == 0);
    CHECK(8 % (l.dp * l.micro) == 0);
    CHECK((l.dp > 1 || l.zero == ZeroStage::k0));
    CHECK((!l.sequence_parallel || (l.tp > 1 && 16 % l.tp == 0)));
  }
  PlanConstraints fixed;
  fixed.tp = 2;
  fixed.recompute = Recompute::kFull;
  for (const PlanLayout& l : enumerate_layouts(c, 8, fixed)) CHECK((l.tp == 2 && l.recompute == Recompute::kFull));
  fixed.pp = 2;
  fixed.zero = ZeroStage::k1;
  fixed.micro = 2;
  fixed.sequence_parallel = true;
  fixed.schedule = Schedule::k1F1B;
  const std::vector<PlanLayout> one = enumerate_layouts(c, 8, fixed);
  REQUIRE(one.size() == 1);
  CHECK(one[0].describe() == "tp 2 x pp 2 x dp 2, micro 2, 1f1b, zero 1, full, sp");
}

TEST_CASE("planner errors: unknown hardware, no factorization, no fit", "[cpu][planner][errors]") {
  CHECK_THROWS_WITH(load_hardware("h900"),
                    Catch::Contains("unknown hardware 'h900'; known: a100-80gb, cpu-local, h100-sxm, h20, h200, h800"));
  // 7 GPUs: tp 7 splits no head count, pp 7 no layer count, dp 7 no batch of 8.
  CHECK_THROWS_WITH(enumerate_layouts(tiny("llama"), 7, {}), Catch::Contains("no layout of 7 GPUs fits this model"));
  Config big = tiny("llama");  // about 8 B parameters on two 12 GB "GPUs"
  big.model.vocab_size = 4000000;
  big.model.d_model = 4096;
  big.model.heads = 32;
  big.model.kv_heads = 8;
  big.model.ffn_dim = 16384;
  CHECK_THROWS_WITH(
      plan_layouts(big, 2, load_hardware("cpu-local"), {}),
      Catch::Contains("the model fits no layout of 2 x cpu-local") && Catch::Contains("the smallest needs"));
}

TEST_CASE("activation memory under tensor and sequence parallelism is what a shard allocates", "[mpi][planner]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 2 && world.size() != 4) return;
  const int tp = world.size();
  const HardwareProfile hw = load_hardware("cpu-local");
  for (const std::string arch : {"gpt2", "llama"}) {
    for (bool sp : {false, true}) {
      for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
        INFO(arch << ", tp " << tp << ", sequence parallel " << sp << ", recompute " << recompute);
        const Config c = tiny(arch);  // LLaMA's 2 key/value heads are shared by 2 ranks each at tp 4
        TransformerOptions options(2, 16);
        options.recompute = recompute;
        options.tp_group = &world;
        options.sequence_parallel = sp;
        Transformer model(c.model, options);
        PlanLayout l = layout(tp, 1, 1, ZeroStage::k0, recompute);
        l.sequence_parallel = sp;
        CHECK(estimate_layout(c, l, hw).memory.activations == static_cast<double>(model.activation_bytes()));
      }
    }
  }
  // By hand, GPT-2 tiny at tp 2 with sequence parallelism, micro-batch 2 of 16 tokens (N = 32,
  // N_l = 16 rows, C = 32): per layer the input 16·32 and a cache of 5760 elements (norm outputs
  // and statistics 2·(512 + 32), q|k|v 32·96/2, mid residual 512, FFN 2·32·64/2, attention output
  // 32·32/2 and its log-sum-exp 2·2·16); 2 layers and the last output: 13056 fp32 elements.
  if (tp == 2) {
    PlanLayout l = layout(2, 1, 1);
    l.sequence_parallel = true;
    CHECK(estimate_layout(tiny("gpt2"), l, hw).memory.activations == 13056 * 4);
  }
}

TEST_CASE("GEMM shapes: tile and wave quantisation, and the framework's attention and optimizer", "[cpu][planner]") {
  const HardwareProfile a100 = load_hardware("a100-80gb");
  REQUIRE(a100.sms == 108);
  // A 175B layer's shapes on tp 8: the same layout with the framework of the published runs
  // (unfused attention with its T x T passes, dropout masks, a heavier optimizer) is slower.
  const Config c = parse_config(
      "model: {arch: gpt2, layers: 8, d_model: 12288, heads: 96, kv_heads: 96, ffn_dim: 49152, vocab_size: 51200, "
      "seq_len: 2048}\nbatch: {global: 8, micro: 1}\nprecision: {compute: fp16}\n",
      "big.yaml");
  const PlanLayout l = layout(8, 1, 1, ZeroStage::k0, Recompute::kNone, 1);
  const PlanEstimate tessel = estimate_layout(c, l, a100);
  const PlanEstimate megatron = estimate_layout(c, l, a100, 0.1, load_framework("megatron-lm-2022"));
  CHECK(megatron.time.compute > tessel.time.compute);  // no causal half skipped
  CHECK(megatron.time.memory_bound > 1.5 * tessel.time.memory_bound);
  CHECK(megatron.time.optimizer == Approx(tessel.time.optimizer * 50 / 34));
  CHECK(megatron.time.tp_comm == tessel.time.tp_comm);
  // Without its SM count the profile is the plain roofline; with it, every GEMM loses the idle
  // slots of its last wave: never faster.
  HardwareProfile plain = a100;
  plain.sms = 0;
  CHECK(estimate_layout(c, l, plain).time.compute < tessel.time.compute);
  // Wave quantisation: 108 tiles of 128 x 256 fill the 108 SMs once; one tile more takes a
  // second wave, as long as twice the rows do.
  const double K = 8192, one_wave = gemm_seconds(128 * 108, 256, K, 2, a100, 312);
  CHECK(gemm_seconds(128 * 109, 256, K, 2, a100, 312) == Approx(2 * one_wave));
  CHECK(gemm_seconds(128 * 216, 256, K, 2, a100, 312) == Approx(2 * one_wave));
  CHECK(one_wave == Approx(2 * 128 * 108 * 256 * K / (312e12 * a100.gemm_efficiency)));
  // Tile quantisation: 100 rows cost a whole tile of 128.
  CHECK(gemm_seconds(100 * 108, 256, K, 2, a100, 312) == Approx(one_wave));
}

TEST_CASE("framework profiles: the shipped ones load, bad ones are errors naming the file", "[cpu][planner][errors]") {
  CHECK(load_framework("tessel").attention == AttentionImpl::kFused);
  const Framework m = load_framework("megatron-lm-2022");
  CHECK((m.attention == AttentionImpl::kUnfused && m.pp_scatter_gather && m.hidden_dropout));
  CHECK(m.optimizer_bytes_per_param == 50);
  CHECK_THROWS_WITH(load_framework("deepspeed-9"),
                    Catch::Contains("unknown framework 'deepspeed-9'") && Catch::Contains("megatron-lm-2022, tessel"));
  const std::string dir = (std::filesystem::temp_directory_path() / "tessel-test-frameworks").string();
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/bad.yaml") << "name: bad\nattention: flash\n";
  CHECK_THROWS_WITH(load_framework(dir + "/bad.yaml"),
                    Catch::Contains("bad.yaml:2: 'attention' must be fused or unfused, found 'flash'"));
  std::ofstream(dir + "/typo.yaml") << "name: typo\nhiden_dropout: true\n";
  CHECK_THROWS_WITH(load_framework(dir + "/typo.yaml"), Catch::Contains("typo.yaml:2: unknown key 'hiden_dropout'"));
  std::ofstream(dir + "/flag.yaml") << "hidden_dropout: yes please\n";
  CHECK_THROWS_WITH(load_framework(dir + "/flag.yaml"), Catch::Contains("'hidden_dropout' must be true or false"));
  // Hardware profiles too: a misspelt constant is an error, not a silent default.
  std::ofstream(dir + "/gpu.yaml") << "peak_tflops: {bf16: 1, fp16: 1, fp32: 1}\ngemm_eficiency: 0.9\n";
  CHECK_THROWS_WITH(load_hardware(dir + "/gpu.yaml"),
                    Catch::Contains("gpu.yaml:2: unknown key 'gemm_eficiency' in a hardware profile; expected name"));
  std::filesystem::remove_all(dir);
}

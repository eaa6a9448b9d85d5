#include "core/model/param_specs.h"

#include <cmath>

namespace tessel {

std::string ModelNames::layer(int64_t i, const std::string& gpt2_suffix, const std::string& llama_suffix) const {
  return hf_gpt2 ? "transformer.h." + std::to_string(i) + "." + gpt2_suffix
                 : "model.layers." + std::to_string(i) + "." + llama_suffix;
}

ModelNames model_names(const ModelConfig& c) {
  ModelNames n;
  n.hf_gpt2 = c.arch == Arch::kGpt2;
  if (n.hf_gpt2) {
    n.wte = "transformer.wte.weight";
    n.wpe = "transformer.wpe.weight";
    n.final_norm_w = "transformer.ln_f.weight";
    n.final_norm_b = "transformer.ln_f.bias";
  } else {
    n.wte = "model.embed_tokens.weight";
    n.wpe = "model.embed_positions.weight";
    n.final_norm_w = "model.norm.weight";
    n.final_norm_b = "model.norm.bias";
  }
  n.lm_head = "lm_head.weight";
  return n;
}

std::vector<ParamSpec> transformer_param_specs(const ModelConfig& c) {
  const ModelNames n = model_names(c);
  const int64_t C = c.d_model, D = c.head_dim(), H = c.heads, KV = c.kv_heads, F = c.ffn_dim;
  const float std_ = static_cast<float>(c.init_std);
  // Residual-branch output projections are scaled by 1/sqrt(2L) (GPT-2 paper, Megatron).
  const float out_std = static_cast<float>(c.init_std / std::sqrt(2.0 * c.layers));
  const bool layernorm = c.norm == Norm::kLayerNorm;
  const bool swiglu = c.activation == Activation::kSwiGlu;
  std::vector<ParamSpec> specs;
  auto add = [&](std::string name, Shape shape, int shard_dim, InitKind init, float sd, bool decay,
                 std::vector<int64_t> groups = {}) {
    specs.push_back({std::move(name), std::move(shape), shard_dim, init, sd, decay, std::move(groups)});
  };
  // Linear weight in the family's layout; shard_dim marks column (out) or row (in) parallel.
  // `groups`: fused outputs split one by one (GPT-2's q|k|v, a fused gate|up).
  auto linear = [&](const std::string& gname, const std::string& lname, int64_t in, int64_t out, bool column_parallel,
                    float sd, int64_t layer, const std::vector<int64_t>& groups = {}) {
    const std::string w = n.layer(layer, gname, lname);
    if (n.hf_gpt2) {
      add(w + ".weight", {in, out}, column_parallel ? 1 : 0, InitKind::kNormal, sd, true, groups);
    } else {
      add(w + ".weight", {out, in}, column_parallel ? 0 : 1, InitKind::kNormal, sd, true, groups);
    }
    if (c.bias) add(w + ".bias", {out}, column_parallel ? 0 : -1, InitKind::kZeros, 0, false, groups);
  };
  auto norm = [&](const std::string& name_w, const std::string& name_b) {
    add(name_w, {C}, -1, InitKind::kOnes, 0, false);
    if (layernorm) add(name_b, {C}, -1, InitKind::kZeros, 0, false);
  };

  add(n.wte, {c.vocab_size, C}, 0, InitKind::kNormal, std_, false);
  if (c.position == Position::kLearned) add(n.wpe, {c.seq_len, C}, -1, InitKind::kNormal, std_ / 2, false);
  for (int64_t i = 0; i < c.layers; ++i) {
    norm(n.layer(i, "ln_1.weight", "input_layernorm.weight"), n.layer(i, "ln_1.bias", "input_layernorm.bias"));
    if (n.hf_gpt2) {
      linear("attn.c_attn", "", C, (H + 2 * KV) * D, true, std_, i, {H * D, KV * D, KV * D});
      linear("attn.c_proj", "", H * D, C, false, out_std, i);
    } else {
      linear("", "self_attn.q_proj", C, H * D, true, std_, i);
      // Cross-layer attention: only the first layer of each group projects keys and values.
      if (c.kv_source(i) == i) {
        linear("", "self_attn.k_proj", C, KV * D, true, std_, i);
        linear("", "self_attn.v_proj", C, KV * D, true, std_, i);
        // Fewer key/value heads than tensor-parallel ranks: each head is shared by several.
        for (size_t back = c.bias ? 4 : 2; back > 0; --back) specs[specs.size() - back].shard_heads = KV;
      }
      linear("", "self_attn.o_proj", H * D, C, false, out_std, i);
    }
    norm(n.layer(i, "ln_2.weight", "post_attention_layernorm.weight"),
         n.layer(i, "ln_2.bias", "post_attention_layernorm.bias"));
    if (n.hf_gpt2) {
      linear("mlp.c_fc", "", C, swiglu ? 2 * F : F, true, std_, i,
             swiglu ? std::vector<int64_t>{F, F} : std::vector<int64_t>{});
      linear("mlp.c_proj", "", F, C, false, out_std, i);
    } else if (c.moe.is_moe_layer(i)) {
      // Qwen2-MoE's names (core/model/moe_layer.h); experts have no biases. The router is
      // replicated over tensor-parallel ranks, every expert split like a dense FFN.
      const MoeConfig& moe = c.moe;
      add(n.layer(i, "", "mlp.gate.weight"), {moe.experts, C}, -1, InitKind::kNormal, std_, true);
      if (moe.balance == MoeBalance::kAuxFree) {
        add(n.layer(i, "", "mlp.gate.e_score_correction_bias"), {moe.experts}, -1, InitKind::kZeros, 0, false);
      }
      auto ffn = [&](const std::string& prefix, int64_t width) {
        if (swiglu) add(n.layer(i, "", prefix + "gate_proj.weight"), {width, C}, 0, InitKind::kNormal, std_, true);
        add(n.layer(i, "", prefix + "up_proj.weight"), {width, C}, 0, InitKind::kNormal, std_, true);
        add(n.layer(i, "", prefix + "down_proj.weight"), {C, width}, 1, InitKind::kNormal, out_std, true);
      };
      for (int64_t e = 0; e < moe.experts; ++e) {
        const size_t first = specs.size();
        ffn("mlp.experts." + std::to_string(e) + ".", moe.expert_width(F));
        for (size_t k = first; k < specs.size(); ++k) specs[k].expert = e;
      }
      if (moe.shared_width(F) > 0) ffn("mlp.shared_expert.", moe.shared_width(F));
      if (moe.shared_gate)
        add(n.layer(i, "", "mlp.shared_expert_gate.weight"), {1, C}, -1, InitKind::kNormal, std_, true);
    } else {
      if (swiglu) {
        linear("", "mlp.gate_proj", C, F, true, std_, i);
        linear("", "mlp.up_proj", C, F, true, std_, i);
      } else {
        linear("", "mlp.up_proj", C, F, true, std_, i);
      }
      linear("", "mlp.down_proj", F, C, false, out_std, i);
    }
  }
  norm(n.final_norm_w, n.final_norm_b);
  if (!c.tie_embeddings) add(n.lm_head, {c.vocab_size, C}, 0, InitKind::kNormal, std_, true);
  return specs;
}

int64_t active_parameters(const ModelConfig& c) {
  int64_t n = 0;
  for (const ParamSpec& s : transformer_param_specs(c)) n += shape_numel(s.shape);
  if (!c.moe.enabled()) return n;
  const int64_t projections = c.activation == Activation::kSwiGlu ? 3 : 2;
  const int64_t expert = projections * c.d_model * c.moe.expert_width(c.ffn_dim);
  for (int64_t i = 0; i < c.layers; ++i) {
    if (c.moe.is_moe_layer(i)) n -= (c.moe.experts - c.moe.top_k) * expert;
  }
  return n;
}

}  // namespace tessel

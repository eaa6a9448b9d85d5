// The parameters of Tessel's decoder-only transformer, named as Hugging Face names them.
//
// GPT-2 (arch gpt2): transformer.wte/wpe, transformer.h.{i}.{ln_1,attn.c_attn,attn.c_proj,ln_2,
// mlp.c_fc,mlp.c_proj}, transformer.ln_f; Conv1D weights stored [in, out]; head tied to wte.
// LLaMA (arch llama): model.embed_tokens, model.layers.{i}.{input_layernorm,self_attn.{q,k,v,o}_proj,
// post_attention_layernorm,mlp.{gate,up,down}_proj}, model.norm, lm_head; nn.Linear [out, in].
// The naming follows the config's knobs, not just `arch`: norm, bias, tie_embeddings and
// activation choose the tensors; `arch` chooses the naming family and the weight layout.
#pragma once

#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/model/parameters.h"

namespace tessel {

struct ModelNames {
  bool hf_gpt2 = true;  // GPT-2 naming and [in, out] weights; else LLaMA naming and [out, in]
  std::string wte, wpe, final_norm_w, final_norm_b, lm_head;
  std::string layer(int64_t i, const std::string& gpt2_suffix, const std::string& llama_suffix) const;
};

ModelNames model_names(const ModelConfig& config);
std::vector<ParamSpec> transformer_param_specs(const ModelConfig& config);
// The parameters one token passes through: all of them for a dense model; with model.moe,
// each MoE layer counts top_k of its routed experts (and its router and shared experts).
int64_t active_parameters(const ModelConfig& config);

}  // namespace tessel

// Hugging Face checkpoints: a directory with config.json and model.safetensors (or, when large,
// model-0000k-of-0000n.safetensors shards listed in model.safetensors.index.json), as
// transformers' GPT2LMHeadModel and LlamaForCausalLM save and load them (REFERENCE.md).
//
// Tessel's parameters already carry the Hugging Face names and layouts (GPT-2's Conv1D weights
// [in, out], LLaMA's Linear weights [out, in], RoPE in the rotate-half convention), so export
// and import move tensors under their own names; the work is the config and the checks that a
// Tessel model is one transformers can represent. Pure file I/O; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/model/parameters.h"

namespace tessel {

// config.json for `model`: GPT-2 (layernorm, gelu, learned positions, biases, tied head, as
// many key/value heads as heads) or LLaMA (rmsnorm, swiglu, rope). Throws naming the key a
// transformers model cannot represent.
std::string hf_config_json(const ModelConfig& model);

// Writes config.json and the weights of `whole` (a store of every parameter, without tensor
// parallelism) into out_dir as F32: model.safetensors, or shards of at most max_shard_bytes
// with model.safetensors.index.json. Returns the files written.
std::vector<std::string> export_hf(const ModelConfig& model, const ParameterStore& whole, const std::string& out_dir,
                                   uint64_t max_shard_bytes = uint64_t{5} << 30);

// The Tessel model config.json describes (model_type gpt2 or llama); throws naming the key.
ModelConfig read_hf_config(const std::string& dir);
// Fills `whole` (a store of transformer_param_specs of the config read_hf_config gave) from the
// directory's safetensors files, converting BF16 and F16 to F32. Every parameter must be there
// with its shape; GPT-2 names without the "transformer." prefix are accepted, as are the
// attention mask buffers and a tied model's lm_head, which are not parameters.
void read_hf_weights(const std::string& dir, ParameterStore& whole);

}  // namespace tessel

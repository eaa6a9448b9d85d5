// `model.arch` presets: the architecture knobs that `arch: gpt2` or `arch: llama` implies.
//
// parse_config applies the preset when it reads `model.arch`, before the other model keys, so
// any knob set explicitly (in the file or by `--set`) wins whatever the order of keys; kv_heads
// and ffn_dim depend on other knobs and are resolved after all keys are read. Code that builds a
// ModelConfig by hand (e.g. a Hugging Face import) can call these too. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "core/config/config.h"

namespace tessel {

// Sets norm, activation, position, bias and tie_embeddings from model.arch:
//   gpt2:  layernorm, gelu, learned positions, biases, tied embeddings
//   llama: rmsnorm, swiglu, rope, no biases, untied embeddings
// Throws tessel::Error for an unknown arch.
void apply_arch_preset(ModelConfig& model);

// The FFN width the preset implies: gpt2 4·d_model; llama int(2·4·d_model/3) rounded up to a
// multiple of 256, as in Meta's LLaMA reference code (d_model 4096 gives 11008).
int64_t preset_ffn_dim(Arch arch, int64_t d_model);

}  // namespace tessel

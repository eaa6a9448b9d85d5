// `model.arch` presets; see config_preset.h.
#include "core/config/preset.h"

#include "core/error.h"

namespace tessel {

namespace {
constexpr int64_t kLlamaFfnMultiple = 256;  // `multiple_of` in Meta's reference code
}  // namespace

void apply_arch_preset(ModelConfig& model) {
  if (model.arch == "gpt2") {
    model.norm = "layernorm";
    model.activation = "gelu";
    model.position = "learned";
    model.bias = true;
    model.tie_embeddings = true;
  } else if (model.arch == "llama") {
    model.norm = "rmsnorm";
    model.activation = "swiglu";
    model.position = "rope";
    model.bias = false;
    model.tie_embeddings = false;
  } else {
    TESSEL_FAIL() << "model.arch: invalid value '" << model.arch << "'; valid values: gpt2, llama";
  }
}

int64_t preset_ffn_dim(const std::string& arch, int64_t d_model) {
  if (arch == "llama") {
    // SwiGLU has three FFN matrices instead of two, so LLaMA shrinks 4·C by 2/3 to keep the
    // parameter count, then rounds up for efficient GEMM shapes.
    const int64_t hidden = 2 * (4 * d_model) / 3;
    return kLlamaFfnMultiple * ((hidden + kLlamaFfnMultiple - 1) / kLlamaFfnMultiple);
  }
  return 4 * d_model;
}

}  // namespace tessel

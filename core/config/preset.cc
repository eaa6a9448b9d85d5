// `model.arch` presets; see preset.h.
#include "core/config/preset.h"

#include "core/error.h"

namespace tessel {

namespace {
constexpr int64_t kLlamaFfnMultiple = 256;  // `multiple_of` in Meta's reference code
}  // namespace

void apply_arch_preset(ModelConfig& model) {
  switch (model.arch) {
    case Arch::kGpt2:
      model.norm = Norm::kLayerNorm;
      model.activation = Activation::kGelu;
      model.position = Position::kLearned;
      model.bias = true;
      model.tie_embeddings = true;
      return;
    case Arch::kLlama:
      model.norm = Norm::kRmsNorm;
      model.activation = Activation::kSwiGlu;
      model.position = Position::kRope;
      model.bias = false;
      model.tie_embeddings = false;
      return;
  }
  TESSEL_FAIL() << "model.arch: invalid value " << static_cast<int>(model.arch) << "; valid values: gpt2, llama";
}

int64_t preset_ffn_dim(Arch arch, int64_t d_model) {
  if (arch == Arch::kLlama) {
    // SwiGLU has three FFN matrices instead of two, so LLaMA shrinks 4·C by 2/3 to keep the
    // parameter count, then rounds up for efficient GEMM shapes.
    const int64_t hidden = 2 * (4 * d_model) / 3;
    return kLlamaFfnMultiple * ((hidden + kLlamaFfnMultiple - 1) / kLlamaFfnMultiple);
  }
  return 4 * d_model;
}

}  // namespace tessel

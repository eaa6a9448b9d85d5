// The model and the optimizer step against PyTorch: tests/golden/make_golden.py wrote, for a
// tiny GPT-2 and a tiny LLaMA-style model, the weights, a batch, the logits, the loss, every
// parameter gradient and a 10-step AdamW loss curve (computed in float64). Tessel loads the same
// weights by Hugging Face name and must reproduce each tensor.
#include <cmath>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/io/safetensors.h"
#include "core/model/transformer.h"
#include "parallel/comm/single_communicator.h"
#include "train/train_step.h"

using namespace tessel;

namespace {

Config tiny_config(const std::string& arch) {
  std::string yaml = R"(
model: {arch: ARCH, vocab_size: 96, seq_len: 16, layers: 2, d_model: 32, heads: 4, KV FFN}
batch: {global: 2, micro: 2}
optim: {lr: 1.0e-2, schedule: constant, warmup_steps: 0, beta1: 0.9, beta2: 0.95, eps: 1.0e-8,
        weight_decay: 0.1, grad_clip: 1.0}
run: {steps: 10}
data: {train: [unused]}
)";
  yaml.replace(yaml.find("ARCH"), 4, arch == "gpt2" ? arch : "llama");
  // "moe": the LLaMA with an MoE FFN in both layers (make_golden.py's MOE); "cla": with
  // cross-layer attention, layer 1 attending with layer 0's keys and values.
  const std::string moe =
      ", moe: {experts: 8, top_k: 2, shared_experts: 1, expert_ffn_dim: 16, shared_ffn_dim: 32, "
      "shared_gate: true, aux_loss_coeff: 0.01}";
  yaml.replace(yaml.find("KV FFN"), 6,
               arch == "gpt2" ? "ffn_dim: 128"
                              : "kv_heads: 2, ffn_dim: 64, rope_theta: 10000.0" + (arch == "moe" ? moe : "") +
                                    (arch == "cla" ? ", cla_share: 2" : ""));
  return parse_config(yaml, "golden-" + arch);
}

std::string golden_path(const std::string& arch) {
  return std::string(TESSEL_TEST_DATA_DIR) + "/golden/" + arch + "_tiny.safetensors";
}

// Max |a - b| / max(max |b|, floor): one relative error per tensor, so that small entries of a
// tensor are judged on the tensor's scale.
double tensor_error(const float* a, const float* b, int64_t n, double floor = 1e-6) {
  double max_diff = 0, max_ref = floor;
  for (int64_t i = 0; i < n; ++i) {
    max_diff = std::max(max_diff, std::fabs(double(a[i]) - double(b[i])));
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
  }
  return max_diff / max_ref;
}

// The tiny model with the golden file's weights loaded by Hugging Face name.
std::unique_ptr<Transformer> golden_model(const Config& config, const SafetensorsFile& golden) {
  auto model = std::make_unique<Transformer>(config.model, TransformerOptions(2, 16));
  ParameterStore& store = model->parameters();
  for (const ParamEntry& e : store.entries()) {
    INFO("parameter " << e.spec.name);
    REQUIRE(golden.has(e.spec.name));
    Tensor w = golden.get(e.spec.name);
    REQUIRE(w.shape() == e.spec.shape);
    store.param(e.spec.name).copy_from(w);
  }
  return model;
}

}  // namespace

TEST_CASE("logits, loss and every gradient match PyTorch for tiny GPT-2, LLaMA, MoE LLaMA and CLA LLaMA",
          "[cpu][golden]") {
  for (const std::string arch : {"gpt2", "llama", "moe", "cla"}) {
    INFO("arch " << arch);
    const Config config = tiny_config(arch);
    SafetensorsFile golden(golden_path(arch));
    std::unique_ptr<Transformer> loaded = golden_model(config, golden);
    Transformer& model = *loaded;
    // The golden file holds exactly this model's parameters (plus tokens, outputs, grad.*).
    int64_t golden_params = 0;
    for (const std::string& name : golden.names()) {
      if (name.rfind("transformer.", 0) == 0 || name.rfind("model.", 0) == 0 || name == "lm_head.weight")
        ++golden_params;
    }
    CHECK(golden_params == static_cast<int64_t>(model.parameters().entries().size()));

    const Tensor tokens = golden.get("tokens"), targets = golden.get("targets");
    const Tensor logits = golden.get("logits");  // (B, T, V)
    // Logits of sequence 0 at every position (fp32 forward vs float64 reference).
    for (int64_t t = 0; t < 16; ++t) {
      std::vector<float> row = model.logits_at(tokens, t);
      CHECK(tensor_error(row.data(), logits.data<float>() + t * 96, 96) < 1e-5);
    }
    model.parameters().zero_grads();
    const float loss = model.forward_backward(tokens, targets, 1.0f);
    CHECK(loss == Approx(golden.get("loss").data<float>()[0]).epsilon(1e-6));
    if (arch == "moe") {
      // The aux loss, summed over both MoE layers; the gradients below are of loss + aux.
      double aux = 0;
      for (const MoeLayerStats& s : model.moe_stats()) aux += s.aux_loss;
      CHECK(aux == Approx(golden.get("aux_loss").data<float>()[0]).epsilon(1e-5));
      CHECK(aux > 0.015);  // two layers near balance: about 2 x 0.01
    }
    for (const ParamEntry& e : model.parameters().entries()) {
      INFO("gradient of " << e.spec.name);
      const Tensor ref = golden.get("grad." + e.spec.name);
      const Tensor got = model.parameters().grad(e.spec.name);
      // fp32 accumulation over 32 positions against float64: 1e-4 of the tensor's scale.
      CHECK(tensor_error(got.data<float>(), ref.data<float>(), ref.numel()) < 1e-4);
    }
  }
}

TEST_CASE("10 AdamW steps with clipping and decoupled decay follow PyTorch's loss curve", "[cpu][golden]") {
  for (const std::string arch : {"gpt2", "llama", "moe", "cla"}) {
    INFO("arch " << arch);
    const Config config = tiny_config(arch);
    SafetensorsFile golden(golden_path(arch));
    std::unique_ptr<Transformer> model = golden_model(config, golden);
    SingleCommunicator one;
    TrainStep step(config, *model, one);
    const Tensor tokens = golden.get("tokens"), targets = golden.get("targets");
    const Tensor curve = golden.get("loss_curve"), norms = golden.get("grad_norm");
    for (int64_t s = 0; s < 10; ++s) {
      StepResult r = step.run(s, [&](uint64_t, const Tensor& tok, const Tensor& tgt) {
        tok.copy_from(tokens);
        tgt.copy_from(targets);
      });
      INFO("step " << s);
      // Errors compound over steps through Adam's normalized updates: 1e-4 relative.
      CHECK(r.loss == Approx(curve.data<float>()[s]).epsilon(1e-4));
      CHECK(r.grad_norm == Approx(norms.data<float>()[s]).epsilon(1e-3));
      CHECK_FALSE(r.skipped);
    }
    CHECK(curve.data<float>()[9] < curve.data<float>()[0] - 0.5f);  // the curve really descends
  }
}

// Checks that the committed golden files (tests/golden/, written by make_golden.py) read with
// Tessel's safetensors reader and are self-consistent, so model tests can trust them.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "core/io/safetensors.h"

namespace tessel {
namespace {

void check_golden(const std::string& file, const std::string& model_type, size_t num_parameters, size_t extra = 0) {
  const std::string path = std::string(TESSEL_TEST_DATA_DIR) + "/golden/" + file;
  SafetensorsFile f(path);
  INFO(path);
  CHECK(f.metadata().at("model_type") == model_type);
  CHECK(f.metadata().at("format") == "pt");
  const int64_t V = std::stoll(f.metadata().at("vocab_size"));
  const int64_t B = std::stoll(f.metadata().at("batch_size"));
  const int64_t T = std::stoll(f.metadata().at("seq_len"));

  // Every parameter comes with a gradient of its shape; nothing else is in the file.
  size_t params = 0;
  for (const std::string& name : f.names()) {
    if (name.rfind("grad.", 0) != 0) continue;
    const std::string param = name.substr(5);
    REQUIRE(f.has(param));
    CHECK(f.info(param).shape == f.info(name).shape);
    CHECK(f.info(param).dtype == DType::F32);
    ++params;
  }
  CHECK(params == num_parameters);
  // + tokens targets logits loss curve norm, and `extra` (an MoE model's aux_loss)
  CHECK(f.names().size() == 2 * num_parameters + 6 + extra);

  const Tensor tokens = f.get("tokens");
  const Tensor targets = f.get("targets");
  const Tensor logits = f.get("logits");
  REQUIRE(tokens.shape() == Shape{B, T});
  REQUIRE(targets.shape() == Shape{B, T});
  REQUIRE(logits.shape() == Shape{B, T, V});
  CHECK(f.get("loss").shape() == Shape{1});
  CHECK(f.get("loss_curve").shape() == Shape{10});
  CHECK(f.get("grad_norm").shape() == Shape{10});

  // The stored loss is the mean cross-entropy of the stored logits. Recomputed in double from
  // f32 logits (relative rounding 6e-8, |logits| < 10): agreement to 1e-5 is far inside that.
  double total = 0;
  for (int64_t i = 0; i < B * T; ++i) {
    const int32_t target = targets.data<int32_t>()[i];
    REQUIRE(target >= 0);
    REQUIRE(target < V);
    CHECK(tokens.data<int32_t>()[i] >= 0);
    CHECK(tokens.data<int32_t>()[i] < V);
    const float* row = logits.data<float>() + i * V;
    double max = row[0];
    for (int64_t v = 1; v < V; ++v) max = std::max(max, double(row[v]));
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - max);
    total += std::log(sum) + max - row[target];
  }
  const float loss = f.get("loss").data<float>()[0];
  CHECK(total / double(B * T) == Approx(loss).margin(1e-5));
  // The curve starts from the same weights and batch, and training on one batch lowers it.
  const Tensor curve_tensor = f.get("loss_curve");  // get() returns an owning copy: keep it
  const float* curve = curve_tensor.data<float>();
  CHECK(curve[0] == Approx(loss).margin(1e-6));
  CHECK(curve[9] < curve[0] - 1.0f);
}

TEST_CASE("golden GPT-2 tiny file is complete and self-consistent", "[io][golden]") {
  // wte, wpe, ln_f (2) + 12 per layer x 2 layers.
  check_golden("gpt2_tiny.safetensors", "gpt2", 2 + 2 + 12 * 2);
}

TEST_CASE("golden LLaMA tiny file is complete and self-consistent", "[io][golden]") {
  // embed_tokens, norm, lm_head + 9 per layer x 2 layers.
  check_golden("llama_tiny.safetensors", "llama", 3 + 9 * 2);
}

TEST_CASE("golden CLA LLaMA tiny file is complete and self-consistent", "[io][golden]") {
  // The LLaMA tiny file's 21 parameters less layer 1's k_proj and v_proj.
  check_golden("cla_tiny.safetensors", "llama-cla", 3 + 9 * 2 - 2);
}

TEST_CASE("golden MoE LLaMA tiny file is complete and self-consistent", "[io][golden]") {
  // embed_tokens, norm, lm_head + per layer: 2 norms, 4 attention, the router, 8 experts x 3
  // and the shared expert's 3 and its gate, x 2 layers; and the aux loss.
  check_golden("moe_tiny.safetensors", "llama-moe", 3 + (2 + 4 + 1 + 8 * 3 + 3 + 1) * 2, 1);
  SafetensorsFile f(std::string(TESSEL_TEST_DATA_DIR) + "/golden/moe_tiny.safetensors");
  CHECK(f.get("aux_loss").data<float>()[0] > 0.0f);
}

}  // namespace
}  // namespace tessel

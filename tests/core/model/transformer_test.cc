#include <cstring>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/init_rng.h"
#include "core/model/transformer.h"

using namespace tessel;

namespace {

ModelConfig tiny(const std::string& arch) {
  const std::string yaml =
      "model: {arch: " + arch + ", vocab_size: 40, seq_len: 8, layers: 3, d_model: 16, heads: 4, kv_heads: 2}\n";
  return parse_config(yaml, "tiny").model;
}

void fill_tokens(const Tensor& t, uint64_t seed) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    t.data<int32_t>()[i] = static_cast<int32_t>(uniform_at(seed, 1, static_cast<uint64_t>(i)) * 40);
  }
}

}  // namespace

TEST_CASE("full recomputation gives bitwise the same loss and gradients as keeping activations", "[cpu][model]") {
  for (const std::string arch : {"gpt2", "llama"}) {
    INFO(arch);
    TransformerOptions keep_options(2, 8);
    Transformer keep(tiny(arch), keep_options);
    TransformerOptions recompute_options(2, 8);
    recompute_options.recompute = Recompute::kFull;
    Transformer recompute(tiny(arch), recompute_options);
    keep.parameters().initialize(5);
    recompute.parameters().initialize(5);
    Tensor tokens = Tensor::empty({2, 8}, DType::I32), targets = Tensor::empty({2, 8}, DType::I32);
    fill_tokens(tokens, 1);
    fill_tokens(targets, 2);
    keep.parameters().zero_grads();
    recompute.parameters().zero_grads();
    const float a = keep.forward_backward(tokens, targets, 1.0f);
    const float b = recompute.forward_backward(tokens, targets, 1.0f);
    CHECK(a == b);
    const Tensor& ga = keep.parameters().grads();
    const Tensor& gb = recompute.parameters().grads();
    CHECK(std::memcmp(ga.raw(), gb.raw(), ga.nbytes()) == 0);
  }
}

TEST_CASE("gradients accumulate across micro-batches and scale with grad_scale", "[cpu][model]") {
  Transformer m(tiny("llama"), TransformerOptions(2, 8));
  m.parameters().initialize(3);
  Tensor tokens = Tensor::empty({2, 8}, DType::I32), targets = Tensor::empty({2, 8}, DType::I32);
  fill_tokens(tokens, 4);
  fill_tokens(targets, 5);
  m.parameters().zero_grads();
  m.forward_backward(tokens, targets, 1.0f);
  const Tensor once = m.parameters().grads().clone();
  m.parameters().zero_grads();
  m.forward_backward(tokens, targets, 0.5f);
  m.forward_backward(tokens, targets, 0.5f);
  const float* a = once.data<float>();
  const float* b = m.parameters().grads().data<float>();
  for (int64_t i = 0; i < once.numel(); ++i) REQUIRE(b[i] == Approx(a[i]).margin(1e-7));
}

TEST_CASE("the loss at initialization is near ln(V) and logits are causal", "[cpu][model]") {
  Transformer m(tiny("gpt2"), TransformerOptions(1, 8));
  m.parameters().initialize(9);
  Tensor tokens = Tensor::empty({1, 8}, DType::I32), targets = Tensor::empty({1, 8}, DType::I32);
  fill_tokens(tokens, 6);
  fill_tokens(targets, 7);
  CHECK(m.forward_loss(tokens, targets) == Approx(std::log(40.0)).epsilon(0.05));
  const std::vector<float> before = m.logits_at(tokens, 3);
  tokens.data<int32_t>()[5] = (tokens.data<int32_t>()[5] + 1) % 40;  // a later token changes
  CHECK(m.logits_at(tokens, 3) == before);                           // position 3 cannot see it
  tokens.data<int32_t>()[2] = (tokens.data<int32_t>()[2] + 1) % 40;  // an earlier one does
  CHECK(m.logits_at(tokens, 3) != before);
}

TEST_CASE("FLOPs per token follow 6N + 6LTC", "[cpu][model]") {
  Transformer m(tiny("gpt2"), TransformerOptions(1, 8));
  CHECK(m.flops_per_token() == 6.0 * m.num_parameters() + 6.0 * 3 * 8 * 16);
}

TEST_CASE("micro-batches in flight in separate slots give bitwise the gradients of running them one by one",
          "[cpu][model]") {
  for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
    INFO(recompute);
    TransformerOptions one_options(2, 8);
    one_options.recompute = recompute;
    Transformer one(tiny("llama"), one_options);
    TransformerOptions two_options(2, 8);
    two_options.recompute = recompute;
    two_options.part = ModelPart::whole(3, 2);
    Transformer two(tiny("llama"), two_options);
    one.parameters().initialize(5);
    two.parameters().initialize(5);
    Tensor t0 = Tensor::empty({2, 8}, DType::I32), y0 = Tensor::empty({2, 8}, DType::I32);
    Tensor t1 = Tensor::empty({2, 8}, DType::I32), y1 = Tensor::empty({2, 8}, DType::I32);
    fill_tokens(t0, 1);
    fill_tokens(y0, 2);
    fill_tokens(t1, 3);
    fill_tokens(y1, 4);
    one.parameters().zero_grads();
    two.parameters().zero_grads();
    const float a0 = one.forward_backward(t0, y0, 0.5f);
    const float a1 = one.forward_backward(t1, y1, 0.5f);
    // A pipeline's order: both forwards, then both backwards.
    two.forward(t0, 0);
    two.forward(t1, 1);
    const float b0 = two.backward(t0, y0, 0.5f, 0);
    const float b1 = two.backward(t1, y1, 0.5f, 1);
    CHECK(a0 == b0);
    CHECK(a1 == b1);
    CHECK(a0 != a1);  // different data: the slots did not share activations
    const Tensor& ga = one.parameters().grads();
    const Tensor& gb = two.parameters().grads();
    CHECK(std::memcmp(ga.raw(), gb.raw(), ga.nbytes()) == 0);
  }
  TransformerOptions two_options(2, 8);
  two_options.part = ModelPart::whole(3, 2);
  Transformer two(tiny("gpt2"), two_options);
  Tensor t = Tensor::zeros({2, 8}, DType::I32);
  CHECK_THROWS_WITH(two.forward(t, 2), Catch::Contains("activation slot 2 outside [0, 2)"));
}

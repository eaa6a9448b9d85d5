// Generation with MoE layers: routed without capacity, so the logits at a position depend only on
// the tokens up to it (training's capacity would let the padding after a prompt, or the tokens
// sampled later, take an expert's room from it).
#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/transformer.h"

using namespace tessel;

TEST_CASE("generation routes MoE layers without capacity, as a dropless model of the same weights does",
          "[cpu][model][moe]") {
  // One slot per expert for 16 assignments: training's routing would drop most of them.
  const auto model_with = [](const std::string& capacity) {
    return parse_config(
               "model: {arch: llama, vocab_size: 40, seq_len: 8, layers: 2, d_model: 16, heads: 4, kv_heads: 2, "
               "moe: {experts: 4, top_k: 2, capacity_factor: " +
                   capacity + "}}\n",
               "tiny-moe")
        .model;
  };
  Transformer tight(model_with("0.25"), TransformerOptions(1, 8));
  Transformer dropless(model_with("0"), TransformerOptions(1, 8));
  tight.parameters().initialize(3);
  dropless.parameters().initialize(3);  // the same weights: initialization depends on names only
  const Tensor tokens = Tensor::from_vector<int32_t>({5, 9, 13, 2, 30, 1, 22, 0}, {1, 8});
  for (int64_t position : {3, 7}) CHECK(tight.logits_at(tokens, position) == dropless.logits_at(tokens, position));
}

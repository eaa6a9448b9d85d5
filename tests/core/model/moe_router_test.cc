// MoE routing (core/model/moe_router.h) against hand-computed routings, finite differences and
// a skewed router that aux-free balancing must even out.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "core/model/moe_router.h"

using namespace tessel;

namespace {

MoeConfig moe(int64_t experts, int64_t top_k) {
  MoeConfig c;
  c.experts = experts;
  c.top_k = top_k;
  return c;
}

}  // namespace

TEST_CASE("capacity drops, or re-routes to the best expert with room, in slot-major token order", "[moe]") {
  // 4 tokens, 3 experts, top-1. Tokens 0-2 prefer expert 0; token 1's second choice is 2, token
  // 2's is 2 then 1; token 3 prefers 1. Capacity ceil(0.75 · 4 · 1 / 3) = 1 per expert.
  const std::vector<float> logits = {2, 1, 0, 2, 0, 1, 3, 1, 2, 0, 2, 1};
  MoeConfig c = moe(3, 1);
  c.capacity_factor = 0.75;
  {
    INFO("drop: expert 0 takes token 0, tokens 1 and 2 are dropped, expert 1 takes token 3");
    const MoeRouting r = route_tokens(c, logits.data(), nullptr, 4);
    CHECK(r.expert == std::vector<int32_t>{0, -1, -1, 1});
    CHECK(r.weight == std::vector<float>{1, 0, 0, 1});
    CHECK(r.dropped == 2);
    CHECK(r.rerouted == 0);
    CHECK(r.offsets == std::vector<int64_t>{0, 1, 2, 2});
    CHECK(r.assignment == std::vector<int32_t>{0, 3});
    CHECK(r.chosen == std::vector<int64_t>{3, 1, 0});  // the router's choices, before capacity
  }
  {
    INFO("reroute: token 1 goes to expert 2, token 2 to expert 1 (2 is full), token 3 finds no room");
    c.overflow = MoeOverflow::kReroute;
    const MoeRouting r = route_tokens(c, logits.data(), nullptr, 4);
    CHECK(r.expert == std::vector<int32_t>{0, 2, 1, -1});
    CHECK(r.original == std::vector<int32_t>{0, 0, 0, 1});
    CHECK(r.weight == std::vector<float>{1, 1, 1, 0});  // re-routed assignments keep their weight
    CHECK(r.rerouted == 2);
    CHECK(r.dropped == 1);
    CHECK(r.assignment == std::vector<int32_t>{0, 2, 1});  // expert-major: e0 t0, e1 t2, e2 t1
  }
  {
    INFO("a capacity factor past every assignment is dropless, not an overflow");
    c.capacity_factor = 1e30;
    const MoeRouting r = route_tokens(c, logits.data(), nullptr, 4);
    CHECK(r.expert == std::vector<int32_t>{0, 0, 0, 1});
    CHECK(r.dropped + r.rerouted == 0);
  }
  {
    INFO("dropless: everyone gets their first choice");
    c.capacity_factor = 0;
    const MoeRouting r = route_tokens(c, logits.data(), nullptr, 4);
    CHECK(r.expert == std::vector<int32_t>{0, 0, 0, 1});
    CHECK(r.dropped + r.rerouted == 0);
  }
}

TEST_CASE("top-k weights and the aux loss by hand", "[moe]") {
  // Token 0 ties (expert 0 wins: the lower index), token 1 has p = (0.75, 0.25).
  const std::vector<float> logits = {0, 0, static_cast<float>(std::log(3.0)), 0};
  MoeConfig c = moe(2, 1);
  c.aux_loss_coeff = 0.01;
  const MoeRouting r = route_tokens(c, logits.data(), nullptr, 2);
  CHECK(r.expert == std::vector<int32_t>{0, 0});
  CHECK(r.probs[2] == Approx(0.75));
  // coeff · E / (N² k) · Σ count_e · Σ_n p = 0.01 · 2 / 4 · (2 · 1.25 + 0 · 0.75)
  CHECK(r.aux_loss == Approx(0.0125));
  // top-2 of 3 without renormalising: the probabilities themselves; with it, they sum to 1.
  MoeConfig k2 = moe(3, 2);
  const std::vector<float> three = {1, 2, 3};
  k2.norm_topk = false;
  MoeRouting raw = route_tokens(k2, three.data(), nullptr, 1);
  CHECK(raw.expert == std::vector<int32_t>{2, 1});
  CHECK(raw.weight[0] == Approx(raw.probs[2]));
  k2.norm_topk = true;
  MoeRouting normed = route_tokens(k2, three.data(), nullptr, 1);
  CHECK(normed.weight[0] + normed.weight[1] == Approx(1.0));
  CHECK(normed.weight[0] / normed.weight[1] == Approx(std::exp(1.0)));
  // sigmoid scores: independent per expert.
  k2.router = MoeRouter::kSigmoid;
  MoeRouting sig = route_tokens(k2, three.data(), nullptr, 1);
  CHECK(sig.probs[0] == Approx(1 / (1 + std::exp(-1.0))));
}

TEST_CASE("route_backward matches finite differences of weights and aux loss", "[moe]") {
  const int64_t N = 6, E = 5;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> logits(N * E), d_weight(N * 2);
  for (float& x : logits) x = normal(rng);
  for (float& x : d_weight) x = normal(rng);
  for (MoeRouter router : {MoeRouter::kSoftmax, MoeRouter::kSigmoid}) {
    for (bool norm : {true, false}) {
      INFO("router " << (router == MoeRouter::kSoftmax ? "softmax" : "sigmoid") << ", norm_topk " << norm);
      MoeConfig c = moe(E, 2);
      c.router = router;
      c.norm_topk = norm;
      c.aux_loss_coeff = 0.3;
      const float aux_scale = 0.7f;
      // f = Σ d_weight · weight + aux_scale · aux, at fixed selections.
      auto f = [&](const std::vector<float>& z) {
        const MoeRouting r = route_tokens(c, z.data(), nullptr, N);
        double v = aux_scale * r.aux_loss;
        for (int64_t a = 0; a < N * 2; ++a) v += static_cast<double>(d_weight[a]) * r.weight[a];
        return v;
      };
      const MoeRouting r = route_tokens(c, logits.data(), nullptr, N);
      std::vector<float> grad(N * E);
      route_backward(c, r, d_weight.data(), aux_scale, grad.data());
      for (int64_t i = 0; i < N * E; ++i) {
        std::vector<float> up = logits, down = logits;
        up[i] += 1e-3f;
        down[i] -= 1e-3f;
        const double numeric = (f(up) - f(down)) / 2e-3;
        CHECK(grad[i] == Approx(numeric).margin(2e-3));
      }
    }
  }
}

TEST_CASE("aux-free balancing moves a skewed router's bias toward equal loads", "[moe]") {
  // Every token prefers expert 0 by a margin; only the selection bias can spread them.
  const int64_t N = 64, E = 4;
  std::vector<float> logits(N * E);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> noise(0.f, 1.0f);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t e = 0; e < E; ++e) logits[n * E + e] = (e == 0 ? 1.0f : 0.0f) + noise(rng);
  }
  MoeConfig c = moe(E, 1);
  c.balance = MoeBalance::kAuxFree;
  std::vector<float> bias(E, 0.f);
  auto imbalance = [&] {
    const MoeRouting r = route_tokens(c, logits.data(), bias.data(), N);
    int64_t most = 0;
    for (int64_t n : r.chosen) most = std::max(most, n);
    return static_cast<double>(most) / (static_cast<double>(N) / E);
  };
  CHECK(imbalance() == Approx(4.0));  // all on expert 0
  for (int step = 0; step < 300; ++step) {
    const MoeRouting r = route_tokens(c, logits.data(), bias.data(), N);
    update_selection_bias(bias.data(), std::vector<double>(r.chosen.begin(), r.chosen.end()), 0.002);
  }
  CHECK(bias[0] < 0);
  CHECK(bias[1] > 0);
  INFO("bias " << bias[0] << " " << bias[1] << " " << bias[2] << " " << bias[3]);
  CHECK(imbalance() < 1.6);
  // The bias only chooses: the weights still come from the probabilities.
  const MoeRouting r = route_tokens(c, logits.data(), bias.data(), N);
  CHECK(r.aux_loss == 0);
}

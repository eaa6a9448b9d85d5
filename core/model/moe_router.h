// MoE routing: which experts each token goes to, with what weight, and the gradient back to the
// router's logits. Host-side and pure: the same logits give the same routing on every rank.
//
// Per token n, from the router's logits (N, E):
//   probs       p = softmax(logits) (router: softmax) or sigmoid(logits) (router: sigmoid);
//   selection   the top_k experts by p + bias (bias: aux_free's per-expert selection bias, used
//               for choosing only), ties to the lower expert index;
//   weights     w_j = p[e_j], divided by Σ_j p[e_j] with norm_topk.
// Capacity (capacity_factor > 0): each expert takes at most ceil(cf · N · k / E) assignments of a
// micro-batch, granted in slot-major order (every token's first choice, then every token's
// second, ...), tokens in order. An assignment past capacity is dropped (its weight is 0: the
// token keeps its residual and its other experts), or with overflow: reroute sent to the expert
// with room that scores highest among those the token does not already use, keeping its
// weight; when none has room it is dropped.
// Aux loss (balance: aux; Switch/Megatron form): coeff · E / (N² · k) · Σ_e count_e · Σ_n p[n, e],
// count_e = top-k choices of expert e before capacity; 1 · coeff when perfectly balanced.
#pragma once

#include <cstdint>
#include <vector>

#include "core/config/config.h"

namespace tessel {

struct MoeRouting {
  int64_t tokens = 0, experts = 0, top_k = 0;
  std::vector<float> probs;         // (N, E): the router's probabilities
  std::vector<int32_t> original;    // (N · k): the expert assignment (n, j) chose (top-k)
  std::vector<int32_t> expert;      // (N · k): the expert that computes it (rerouted); -1: dropped
  std::vector<float> norm_weight;   // (N · k): w_j before any drop (the backward's normaliser)
  std::vector<float> weight;        // (N · k): the combine weight, 0 when dropped
  std::vector<int64_t> chosen;      // (E): top-k choices per expert, before capacity
  std::vector<int64_t> offsets;     // (E + 1): each expert's rows in expert-major order
  std::vector<int32_t> assignment;  // (rows): the assignment n · k + j of each expert-major row
  int64_t dropped = 0, rerouted = 0;
  double aux_loss = 0;  // with the coefficient; 0 unless balance: aux

  int64_t rows() const { return static_cast<int64_t>(assignment.size()); }
};

// logits (N, E) row-major; bias (E) or null (aux_free's selection bias).
MoeRouting route_tokens(const MoeConfig& config, const float* logits, const float* bias, int64_t tokens);

// The gradient of the routing's output w.r.t. the logits (N, E), written to d_logits:
// d_weight (N · k) is d loss / d weight (0 for dropped assignments), and the aux loss's
// gradient is added with `aux_scale` (the micro-batch's loss scale).
void route_backward(const MoeConfig& config, const MoeRouting& routing, const float* d_weight, float aux_scale,
                    float* d_logits);

// aux_free: bias_e += rate · sign(mean load − load_e) for the step's top-k choices per expert.
void update_selection_bias(float* bias, const std::vector<double>& load, double rate);

}  // namespace tessel

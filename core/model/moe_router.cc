#include "core/model/moe_router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tessel {

MoeRouting route_tokens(const MoeConfig& c, const float* logits, const float* bias, int64_t N) {
  const int64_t E = c.experts, K = c.top_k;
  MoeRouting r;
  r.tokens = N;
  r.experts = E;
  r.top_k = K;
  r.probs.resize(static_cast<size_t>(N * E));
  r.expert.assign(static_cast<size_t>(N * K), -1);
  r.norm_weight.assign(static_cast<size_t>(N * K), 0.f);
  r.chosen.assign(static_cast<size_t>(E), 0);
  std::vector<float> score(static_cast<size_t>(N * E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n) {
    const float* z = logits + n * E;
    float* p = r.probs.data() + n * E;
    if (c.router == MoeRouter::kSoftmax) {
      const float top = *std::max_element(z, z + E);
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += std::exp(static_cast<double>(z[e]) - top);
      for (int64_t e = 0; e < E; ++e) p[e] = static_cast<float>(std::exp(static_cast<double>(z[e]) - top) / sum);
    } else {
      for (int64_t e = 0; e < E; ++e) p[e] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(z[e]))));
    }
    float* s = score.data() + n * E;
    for (int64_t e = 0; e < E; ++e) s[e] = p[e] + (bias ? bias[e] : 0.f);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    double total = 0;
    for (int64_t j = 0; j < K; ++j) total += p[order[static_cast<size_t>(j)]];
    for (int64_t j = 0; j < K; ++j) {
      const int32_t e = order[static_cast<size_t>(j)];
      r.expert[static_cast<size_t>(n * K + j)] = e;
      r.norm_weight[static_cast<size_t>(n * K + j)] = c.norm_topk ? static_cast<float>(p[e] / total) : p[e];
      ++r.chosen[static_cast<size_t>(e)];
    }
  }
  r.weight = r.norm_weight;
  r.original = r.expert;

  if (c.capacity_factor > 0) {
    // No expert can take more than all N·k assignments: a larger factor is dropless (and would
    // overflow the conversion).
    const double wanted = std::ceil(c.capacity_factor * static_cast<double>(N * K) / static_cast<double>(E));
    const int64_t capacity = static_cast<int64_t>(std::min(wanted, static_cast<double>(N * K)));
    std::vector<int64_t> taken(static_cast<size_t>(E), 0);
    for (int64_t j = 0; j < K; ++j) {
      for (int64_t n = 0; n < N; ++n) {
        const size_t a = static_cast<size_t>(n * K + j);
        int32_t e = r.expert[a];
        if (taken[static_cast<size_t>(e)] < capacity) {
          ++taken[static_cast<size_t>(e)];
          continue;
        }
        int32_t to = -1;
        if (c.overflow == MoeOverflow::kReroute) {
          const float* s = score.data() + n * E;
          for (int32_t f = 0; f < E; ++f) {
            if (taken[static_cast<size_t>(f)] >= capacity) continue;
            bool used = false;
            for (int64_t i = 0; i < K; ++i) used = used || r.expert[static_cast<size_t>(n * K + i)] == f;
            if (!used && (to < 0 || s[f] > s[to])) to = f;
          }
        }
        if (to >= 0) {
          r.expert[a] = to;
          ++taken[static_cast<size_t>(to)];
          ++r.rerouted;
        } else {
          r.expert[a] = -1;
          r.weight[a] = 0.f;
          ++r.dropped;
        }
      }
    }
  }

  // Expert-major rows: each expert's assignments in token order.
  r.offsets.assign(static_cast<size_t>(E + 1), 0);
  for (int32_t e : r.expert) {
    if (e >= 0) ++r.offsets[static_cast<size_t>(e) + 1];
  }
  for (int64_t e = 0; e < E; ++e) r.offsets[static_cast<size_t>(e + 1)] += r.offsets[static_cast<size_t>(e)];
  r.assignment.resize(static_cast<size_t>(r.offsets.back()));
  std::vector<int64_t> next(r.offsets.begin(), r.offsets.end() - 1);
  for (int64_t a = 0; a < N * K; ++a) {
    const int32_t e = r.expert[static_cast<size_t>(a)];
    if (e >= 0) r.assignment[static_cast<size_t>(next[static_cast<size_t>(e)]++)] = static_cast<int32_t>(a);
  }

  if (c.balance == MoeBalance::kAux && c.aux_loss_coeff > 0) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) {
      double column = 0;
      for (int64_t n = 0; n < N; ++n) column += r.probs[static_cast<size_t>(n * E + e)];
      sum += static_cast<double>(r.chosen[static_cast<size_t>(e)]) * column;
    }
    r.aux_loss = c.aux_loss_coeff * static_cast<double>(E) / (static_cast<double>(N) * N * K) * sum;
  }
  return r;
}

void route_backward(const MoeConfig& c, const MoeRouting& r, const float* d_weight, float aux_scale, float* d_logits) {
  const int64_t N = r.tokens, E = r.experts, K = r.top_k;
  const bool aux = c.balance == MoeBalance::kAux && c.aux_loss_coeff > 0;
  const double aux_unit = aux ? c.aux_loss_coeff * static_cast<double>(E) / (static_cast<double>(N) * N * K) : 0;
  std::vector<double> dp(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n) {
    const float* p = r.probs.data() + n * E;
    for (int64_t e = 0; e < E; ++e)
      dp[static_cast<size_t>(e)] = aux_scale * aux_unit * r.chosen[static_cast<size_t>(e)];
    // The top-k choices before capacity: a rerouted assignment's weight comes from the expert
    // it first chose.
    double total = 0, dot = 0;
    for (int64_t j = 0; j < K; ++j) {
      const size_t a = static_cast<size_t>(n * K + j);
      total += p[r.original[a]];
      dot += static_cast<double>(d_weight[a]) * r.norm_weight[a];
    }
    for (int64_t j = 0; j < K; ++j) {
      const size_t a = static_cast<size_t>(n * K + j);
      const double g = d_weight[a];
      dp[static_cast<size_t>(r.original[a])] += c.norm_topk ? (g - dot) / total : g;
    }
    float* dz = d_logits + n * E;
    if (c.router == MoeRouter::kSoftmax) {
      double inner = 0;
      for (int64_t e = 0; e < E; ++e) inner += p[e] * dp[static_cast<size_t>(e)];
      for (int64_t e = 0; e < E; ++e) dz[e] = static_cast<float>(p[e] * (dp[static_cast<size_t>(e)] - inner));
    } else {
      for (int64_t e = 0; e < E; ++e) dz[e] = static_cast<float>(dp[static_cast<size_t>(e)] * p[e] * (1.0 - p[e]));
    }
  }
}

void update_selection_bias(float* bias, const std::vector<double>& load, double rate) {
  if (load.empty()) return;
  const double mean = std::accumulate(load.begin(), load.end(), 0.0) / static_cast<double>(load.size());
  for (size_t e = 0; e < load.size(); ++e) {
    const double gap = mean - load[e];
    bias[e] += static_cast<float>(rate * ((gap > 0) - (gap < 0)));
  }
}

}  // namespace tessel

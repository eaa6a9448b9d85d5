// Training data for layout-equivalence tests: tokens as a function of the global sample index
// only, so every layout sees the same data. A learnable pattern (id = (sample·stride + 3t) mod
// 64) with 20% noise from the counter-based RNG, so the loss falls and a curve says something.
#pragma once

#include "core/model/init_rng.h"
#include "core/tensor.h"

namespace tessel {

// tokens, targets: I32 (B, T) for global samples [first, first + B); targets are the tokens
// shifted by one.
inline void fill_synthetic_tokens(uint64_t first, const Tensor& tokens, const Tensor& targets, uint64_t stride,
                                  uint64_t noise_seed) {
  const int64_t B = tokens.size(0), T = tokens.size(1);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t <= T; ++t) {
      const uint64_t sample = first + static_cast<uint64_t>(b);
      const int32_t id =
          static_cast<int32_t>((sample * stride + static_cast<uint64_t>(t) * 3) % 64 +
                               (uniform_at(noise_seed, sample, static_cast<uint64_t>(t)) < 0.2 ? 1 : 0)) %
          64;
      if (t < T) tokens.data<int32_t>()[b * T + t] = id;
      if (t > 0) targets.data<int32_t>()[b * T + t - 1] = id;
    }
  }
}

}  // namespace tessel

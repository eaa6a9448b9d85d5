// Finite-difference gradient checking for the CPU kernels' tests.
//
// A kernel's forward maps inputs to outputs; the checked scalar is L = Σ out ⊙ R for a fixed
// random R, so the analytic gradient is the kernel's backward run with dout = R. Central
// differences in double around fp32 inputs; a sample of elements per tensor keeps tests fast.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/model/init_rng.h"

namespace tessel {
namespace testing {

inline std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * normal_at(seed, "test", i);
  return v;
}

inline double weighted_sum(const std::vector<float>& out, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * r[i];
  return s;
}

// Compares analytic[i] with (L(x+h) - L(x-h)) / 2h for up to `samples` elements of x.
// Tolerance: |analytic − numeric| ≤ rtol · max(|analytic|_∞, 1e-3) + atol — fp32 forward
// passes with h = 1e-2·max(1, |x|) give about 1e-3 relative accuracy on these small sizes.
inline void check_gradient(const std::string& what, std::vector<float>& x, const std::vector<float>& analytic,
                           const std::function<double()>& loss, size_t samples = 48, double rtol = 2e-2,
                           double atol = 1e-4) {
  REQUIRE(x.size() == analytic.size());
  double scale = 1e-3;
  for (float g : analytic) scale = std::max(scale, static_cast<double>(std::fabs(g)));
  const size_t stride = std::max<size_t>(1, x.size() / samples);
  for (size_t i = 0; i < x.size(); i += stride) {
    const float saved = x[i];
    const float h = 1e-2f * std::max(1.0f, std::fabs(saved));
    x[i] = saved + h;
    const double plus = loss();
    x[i] = saved - h;
    const double minus = loss();
    x[i] = saved;
    const double numeric = (plus - minus) / (2.0 * static_cast<double>(h));
    INFO(what << "[" << i << "]: analytic " << analytic[i] << " numeric " << numeric);
    CHECK(std::fabs(analytic[i] - numeric) <= rtol * scale + atol);
  }
}

}  // namespace testing
}  // namespace tessel

// Gradient clipping pieces (optim/grad_clip.h).
#include "optim/grad_clip.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace tessel {
namespace {

TEST_CASE("clip_scale follows torch's clip_grad_norm_", "[optim]") {
  CHECK(clip_scale(0.5, 1.0) == 1.0);
  CHECK(clip_scale(4.0, 1.0) == 1.0 / (4.0 + 1e-6));
  CHECK(clip_scale(100.0, 0.0) == 1.0);  // grad_clip 0: no clipping
  CHECK(clip_scale(std::numeric_limits<double>::quiet_NaN(), 1.0) == 1.0);
}

TEST_CASE("all_finite finds a NaN or inf anywhere", "[optim]") {
  std::vector<float> x(5000, 1.0f);
  CHECK(all_finite(x.data(), 5000));
  x[4321] = std::numeric_limits<float>::infinity();
  CHECK_FALSE(all_finite(x.data(), 5000));
  x[4321] = -std::numeric_limits<float>::quiet_NaN();
  CHECK_FALSE(all_finite(x.data(), 5000));
  x[4321] = std::numeric_limits<float>::max();
  CHECK(all_finite(x.data(), 5000));
  CHECK(all_finite(x.data(), 0));
}

}  // namespace
}  // namespace tessel

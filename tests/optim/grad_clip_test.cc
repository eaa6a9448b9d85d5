// Gradient clipping pieces (optim/grad_clip.h).
#include "optim/grad_clip.h"

#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace tessel {
namespace {

TEST_CASE("sum_of_squares is exact on small integers", "[optim]") {
  const std::vector<float> x = {1, -2, 3, 0, 4};
  CHECK(sum_of_squares(x.data(), 5) == 30.0);
  CHECK(sum_of_squares(x.data(), 0) == 0.0);
}

TEST_CASE("sum_of_squares is bitwise the same with 1 or 2 OpenMP threads", "[optim]") {
  const int64_t n = 10 * kSumOfSquaresChunk + 123;  // several chunks and a partial one
  std::vector<float> x(n);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& value : x) value = normal(rng) * 1e-3f;

  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = sum_of_squares(x.data(), n);
  omp_set_num_threads(2);
  const double two = sum_of_squares(x.data(), n);
  omp_set_num_threads(saved);
  CHECK(std::memcmp(&one, &two, sizeof(double)) == 0);

  double reference = 0;  // a plain double sum agrees to rounding
  for (float value : x) reference += static_cast<double>(value) * value;
  CHECK(one == Approx(reference).epsilon(1e-12));
}

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

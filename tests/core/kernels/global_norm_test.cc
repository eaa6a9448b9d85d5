// The CPU squared norm that global-norm clipping sums (core/kernels/cpu/global_norm.cc).
#include <omp.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace {

TEST_CASE("sum_of_squares is exact on small integers", "[kernels]") {
  const std::vector<float> x = {1, -2, 3, 0, 4};
  CHECK(cpu::sum_of_squares(x.data(), 5) == 30.0);
  CHECK(cpu::sum_of_squares(x.data(), 0) == 0.0);
}

TEST_CASE("sum_of_squares is bitwise the same with 1 or 2 OpenMP threads", "[kernels]") {
  const int64_t n = 10 * cpu::kSumOfSquaresChunk + 123;  // several chunks and a partial one
  std::vector<float> x(n);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& value : x) value = normal(rng) * 1e-3f;

  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = cpu::sum_of_squares(x.data(), n);
  omp_set_num_threads(2);
  const double two = cpu::sum_of_squares(x.data(), n);
  omp_set_num_threads(saved);
  CHECK(std::memcmp(&one, &two, sizeof(double)) == 0);

  double reference = 0;  // a plain double sum agrees to rounding
  for (float value : x) reference += static_cast<double>(value) * value;
  CHECK(one == Approx(reference).epsilon(1e-12));
}

}  // namespace
}  // namespace tessel

// The squared norm for global-norm clipping on the CPU; see cpu_kernels.h.
#include <vector>

#include "core/error.h"
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {

double sum_of_squares(const float* x, int64_t n) {
  TESSEL_CHECK(n >= 0) << "sum_of_squares: negative size " << n;
  const int64_t chunks = (n + kSumOfSquaresChunk - 1) / kSumOfSquaresChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kSumOfSquaresChunk;
    const int64_t end = begin + kSumOfSquaresChunk < n ? begin + kSumOfSquaresChunk : n;
    double sum = 0.0;
    // The simd reduction's order depends only on the build's vector width, not on threads.
#pragma omp simd reduction(+ : sum)
    for (int64_t i = begin; i < end; ++i) {
      const double value = x[i];
      sum += value * value;
    }
    partial[static_cast<size_t>(c)] = sum;
  }
  double total = 0.0;
  for (double sum : partial) total += sum;
  return total;
}

}  // namespace cpu
}  // namespace tessel

// Rotary position embedding, Hugging Face (rotate_half) convention.
#include <cmath>
#include <vector>

#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace cpu {
namespace {

// Rotates pairs (i, i + D/2) of every head by angle t·inv_freq_i; sign -1 rotates back.
void rotate(float* x, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta, float sign) {
  const int64_t half = D / 2;
  // cos/sin table (T, D/2), computed in double then rounded, shared by all rows and heads.
  std::vector<float> cos_t(static_cast<size_t>(T * half)), sin_t(static_cast<size_t>(T * half));
  for (int64_t i = 0; i < half; ++i) {
    const double inv_freq = std::pow(static_cast<double>(theta), -2.0 * i / D);
    for (int64_t t = 0; t < T; ++t) {
      cos_t[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(t * inv_freq));
      sin_t[static_cast<size_t>(t * half + i)] = sign * static_cast<float>(std::sin(t * inv_freq));
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < B * T; ++r) {
    const float* c = cos_t.data() + (r % T) * half;
    const float* s = sin_t.data() + (r % T) * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + r * ld + h * D;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i];
        const float b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace

void rope_forward(float* x, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta) {
  rotate(x, ld, B, T, heads, D, theta, 1.0f);
}

void rope_backward(float* dx, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta) {
  // The rotation is orthogonal, so its backward is the rotation by the opposite angle.
  rotate(dx, ld, B, T, heads, D, theta, -1.0f);
}

}  // namespace cpu
}  // namespace tessel

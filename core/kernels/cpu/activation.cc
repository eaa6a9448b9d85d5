// Elementwise activations: tanh-GELU (GPT-2) and SwiGLU (LLaMA).
#include <cmath>

#include "core/kernels/cpu/cpu_kernels.h"
#include "core/kernels/cpu/fast_math.h"

namespace tessel {
namespace cpu {
namespace {
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluCube = 0.044715f;
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanh_approx(kGeluScale * (x + kGeluCube * x * x * x)));
  }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float t = tanh_approx(kGeluScale * (x + kGeluCube * x * x * x));
    const float dt = (1.0f - t * t) * kGeluScale * (1.0f + 3.0f * kGeluCube * x * x);
    dinp[i] = (0.5f * (1.0f + t) + 0.5f * x * dt) * dout[i];
  }
}

void swiglu_forward(float* out, const float* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* g = inp + r * 2 * F;
    const float* u = g + F;
    float* o = out + r * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) o[i] = g[i] / (1.0f + exp_approx(-g[i])) * u[i];
  }
}

void swiglu_backward(float* dinp, const float* inp, const float* dout, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* g = inp + r * 2 * F;
    const float* u = g + F;
    const float* d = dout + r * F;
    float* dg = dinp + r * 2 * F;
    float* du = dg + F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      const float sig = 1.0f / (1.0f + exp_approx(-g[i]));
      const float silu = g[i] * sig;
      dg[i] = d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
      du[i] = d[i] * silu;
    }
  }
}

}  // namespace cpu
}  // namespace tessel

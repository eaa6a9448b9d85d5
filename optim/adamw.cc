// Fused AdamW; see adamw.h.
#include "optim/adamw.h"

#include <cmath>

#include "core/error.h"

namespace tessel {

namespace {

void check_step(const AdamWStep& s) {
  TESSEL_CHECK(s.step >= 1) << "adamw_update: step is 1-based, found " << s.step;
}

// The step's scalars in float, computed once. Bias corrections in double: beta2^t for t in the
// tens of thousands loses digits in float. They enter the loop as floats, as in torch's fp32
// update.
struct Scalars {
  float step_size, inv_sqrt_bc2, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, grad_scale;
  explicit Scalars(const AdamWStep& s) {
    const double bias_correction1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
    const double bias_correction2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
    step_size = static_cast<float>(s.lr / bias_correction1);
    inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bias_correction2));
    beta1 = static_cast<float>(s.beta1);
    beta2 = static_cast<float>(s.beta2);
    one_minus_beta1 = static_cast<float>(1.0 - s.beta1);
    one_minus_beta2 = static_cast<float>(1.0 - s.beta2);
    eps = static_cast<float>(s.eps);
    grad_scale = static_cast<float>(s.grad_scale);
  }
};

// The update of elements [begin, end); called inside a parallel region by every thread, which
// takes its static share without a barrier at the end.
inline void update_range(float* param, const float* grad, float* m, float* v, int64_t begin,
                         int64_t end, float decay, const Scalars& k) {
#pragma omp for simd schedule(static) nowait
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i] * k.grad_scale;
    const float mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const float vi = k.beta2 * v[i] + k.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps;
    param[i] = param[i] * decay - k.step_size * mi / denom;
  }
}

}  // namespace

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n,
                  const AdamWStep& s) {
  check_step(s);
  TESSEL_CHECK(n >= 0) << "adamw_update: negative size " << n;
  if (n == 0) return;
  TESSEL_CHECK(param != nullptr && grad != nullptr && m != nullptr && v != nullptr)
      << "adamw_update: null buffer for " << n << " elements";
  const Scalars k(s);
  const float decay = static_cast<float>(1.0 - s.lr * s.weight_decay);
#pragma omp parallel
  update_range(param, grad, m, v, 0, n, decay, k);
}

void adamw_update_segments(float* param, const float* grad, float* m, float* v,
                           const std::vector<AdamWSegment>& segments, const AdamWStep& s) {
  check_step(s);
  const Scalars k(s);
  // One parallel region for the whole buffer: a region per parameter (about 150 for GPT-2)
  // costs a fork and a barrier each.
#pragma omp parallel
  for (const AdamWSegment& seg : segments) {
    const float decay = static_cast<float>(1.0 - s.lr * seg.weight_decay);
    const int64_t g = seg.grad_offset < 0 ? seg.offset : seg.grad_offset;
    const int64_t st = seg.state_offset < 0 ? seg.offset : seg.state_offset;
    update_range(param + seg.offset, grad + g, m + st, v + st, 0, seg.numel, decay, k);
  }
}

}  // namespace tessel

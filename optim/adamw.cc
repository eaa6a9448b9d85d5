// Fused AdamW; see adamw.h.
#include "optim/adamw.h"

#include <cmath>

#include "core/error.h"

namespace tessel {

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n,
                  const AdamWStep& s) {
  TESSEL_CHECK(s.step >= 1) << "adamw_update: step is 1-based, found " << s.step;
  TESSEL_CHECK(n >= 0) << "adamw_update: negative size " << n;
  if (n == 0) return;
  TESSEL_CHECK(param != nullptr && grad != nullptr && m != nullptr && v != nullptr)
      << "adamw_update: null buffer for " << n << " elements";

  // Scalars in double: beta2^t for t in the tens of thousands loses digits in float. They
  // enter the loop as floats, as in torch's fp32 update.
  const double bias_correction1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bias_correction2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  const float decay = static_cast<float>(1.0 - s.lr * s.weight_decay);
  const float step_size = static_cast<float>(s.lr / bias_correction1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  const float beta1 = static_cast<float>(s.beta1);
  const float beta2 = static_cast<float>(s.beta2);
  const float one_minus_beta1 = static_cast<float>(1.0 - s.beta1);
  const float one_minus_beta2 = static_cast<float>(1.0 - s.beta2);
  const float eps = static_cast<float>(s.eps);
  const float grad_scale = static_cast<float>(s.grad_scale);

#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * grad_scale;
    const float mi = beta1 * m[i] + one_minus_beta1 * g;
    const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_sqrt_bc2 + eps;
    param[i] = param[i] * decay - step_size * mi / denom;
  }
}

}  // namespace tessel

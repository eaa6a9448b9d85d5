// The scalars of one fused AdamW update, in the form every backend's kernel evaluates, so the
// CPU and a device compute the same expression in the same order:
//   g = grad · grad_scale
//   m = beta1 · m + one_minus_beta1 · g
//   v = beta2 · v + one_minus_beta2 · g²
//   param = param · decay − step_size · m / (sqrt(v) · inv_sqrt_bc2 + eps)
// with step_size = lr / (1 − beta1^t), inv_sqrt_bc2 = 1 / sqrt(1 − beta2^t) and
// decay = 1 − lr · weight_decay, computed once per step in double and rounded to float
// (optim/adamw.h's adamw_scalars).
#pragma once

namespace tessel {

struct AdamWScalars {
  float step_size = 0.0f;
  float inv_sqrt_bc2 = 1.0f;
  float beta1 = 0.9f, beta2 = 0.95f;
  float one_minus_beta1 = 0.1f, one_minus_beta2 = 0.05f;
  float eps = 1e-8f;
  float grad_scale = 1.0f;
  float decay = 1.0f;
};

}  // namespace tessel

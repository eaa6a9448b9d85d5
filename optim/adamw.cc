// Fused AdamW; see adamw.h.
#include "optim/adamw.h"

#include <cmath>

#include "core/device_backend.h"
#include "core/error.h"
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {

namespace {

void check_step(const AdamWStep& s) { TESSEL_CHECK(s.step >= 1) << "adamw_update: step is 1-based, found " << s.step; }

}  // namespace

AdamWScalars adamw_scalars(const AdamWStep& s, double weight_decay) {
  check_step(s);
  // Bias corrections in double: beta2^t for t in the tens of thousands loses digits in float.
  // They enter the kernels as floats, as in torch's fp32 update.
  const double bias_correction1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bias_correction2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  AdamWScalars k;
  k.step_size = static_cast<float>(s.lr / bias_correction1);
  k.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  k.beta1 = static_cast<float>(s.beta1);
  k.beta2 = static_cast<float>(s.beta2);
  k.one_minus_beta1 = static_cast<float>(1.0 - s.beta1);
  k.one_minus_beta2 = static_cast<float>(1.0 - s.beta2);
  k.eps = static_cast<float>(s.eps);
  k.grad_scale = static_cast<float>(s.grad_scale);
  k.decay = static_cast<float>(1.0 - s.lr * weight_decay);
  return k;
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWStep& s) {
  adamw_update(param, grad, m, v, n, adamw_scalars(s, s.weight_decay));
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWScalars& k) {
  const cpu::AdamWRange range{param, grad, m, v, n, k};
  cpu::adamw_update(&range, 1);
}

void adamw_update_segments(float* param, const float* grad, float* m, float* v,
                           const std::vector<AdamWSegment>& segments, const AdamWStep& s) {
  check_step(s);
  std::vector<cpu::AdamWRange> ranges;  // per segment: only the decay differs
  for (const AdamWSegment& seg : segments) {
    const int64_t g = seg.grad_offset < 0 ? seg.offset : seg.grad_offset;
    const int64_t st = seg.state_offset < 0 ? seg.offset : seg.state_offset;
    ranges.push_back({param + seg.offset, grad + g, m + st, v + st, seg.numel, adamw_scalars(s, seg.weight_decay)});
  }
  cpu::adamw_update(ranges.data(), ranges.size());
}

void adamw_update_segments(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                           const std::vector<AdamWSegment>& segments, const AdamWStep& s, const Tensor& param_copy) {
  if (param.device().is_cpu()) {
    TESSEL_CHECK(!param_copy.defined()) << "adamw_update_segments: the CPU keeps no compute copy of its weights";
    adamw_update_segments(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), segments, s);
    return;
  }
  DeviceBackend* device = param.storage()->backend();
  TESSEL_CHECK(device != nullptr) << "adamw_update_segments: " << param.str() << " was not made by a device backend";
  for (const Tensor* t : {&grad, &m, &v}) {
    TESSEL_CHECK(t->storage()->backend() == device && t->dtype() == DType::F32)
        << "adamw_update_segments: " << t->str() << " is not an F32 tensor of " << param.str() << "'s device";
  }
  TESSEL_CHECK(!param_copy.defined() ||
               (param_copy.storage()->backend() == device && param_copy.numel() == param.numel()))
      << "adamw_update_segments: compute copy " << param_copy.str() << " does not match " << param.str();
  for (const AdamWSegment& seg : segments) {
    const int64_t g = seg.grad_offset < 0 ? seg.offset : seg.grad_offset;
    const int64_t st = seg.state_offset < 0 ? seg.offset : seg.state_offset;
    device->adamw(param.view(seg.offset, {seg.numel}), grad.view(g, {seg.numel}), m.view(st, {seg.numel}),
                  v.view(st, {seg.numel}), adamw_scalars(s, seg.weight_decay),
                  param_copy.defined() ? param_copy.view(seg.offset, {seg.numel}) : Tensor());
  }
}

}  // namespace tessel

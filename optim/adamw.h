// Fused AdamW on fp32 CPU buffers: one pass updates parameters and both moments in place.
//
// The update is torch.optim.AdamW's (decoupled weight decay, bias correction), on a range of
// raw pointers so that the same call serves one tensor, a flat buffer of many, or a ZeRO shard
// of one. The caller owns all buffers; they must not overlap. Elementwise, so the result does
// not depend on the number of OpenMP threads. Safe to call concurrently on disjoint ranges.
#pragma once

#include <cstdint>
#include <vector>

#include "core/adamw_scalars.h"
#include "core/tensor.h"

namespace tessel {

// Scalars of one optimizer step (one AdamW call per parameter group).
struct AdamWStep {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;  // 0 for groups without decay (norms, biases)
  int64_t step = 1;           // 1-based step count, for bias correction
  double grad_scale = 1.0;    // multiplies the gradient first: clipping and loss-scale undo
};

// For each i in [0, n), with g = grad[i] * grad_scale and t = step:
//   param = param - lr * weight_decay * param
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// param, m, v: (n) updated in place; grad: (n).
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWStep& s);
// The same with the step's scalars already formed (adamw_scalars): what a backend runs.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWScalars& k);

// A range of a flat buffer with its own weight decay (AdamWStep::weight_decay is ignored).
// The gradient and the moments may sit elsewhere than the parameter: a ZeRO shard keeps its
// moments (and, at stage 2, its reduced gradient) in buffers of its own.
struct AdamWSegment {
  int64_t offset = 0;  // first element in param
  int64_t numel = 0;
  double weight_decay = 0.0;
  int64_t grad_offset = -1;   // first element in grad; -1: offset
  int64_t state_offset = -1;  // first element in m and v; -1: offset
};

// adamw_update over each segment of flat buffers, in one parallel region. Segments must not
// overlap; the result equals one adamw_update call per segment, bitwise.
void adamw_update_segments(float* param, const float* grad, float* m, float* v,
                           const std::vector<AdamWSegment>& segments, const AdamWStep& s);
// The same over F32 tensors (flat buffers), on the CPU or on the device backend that made
// them (one fused kernel per segment there). param_copy (device only; undefined: none) is the
// weights' compute copy in bf16 or fp16, laid out like param, rewritten with the update.
void adamw_update_segments(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                           const std::vector<AdamWSegment>& segments, const AdamWStep& s,
                           const Tensor& param_copy = Tensor());

// The update's scalars for step `s` and a group's weight decay, as every backend's kernel
// takes them (core/adamw_scalars.h).
AdamWScalars adamw_scalars(const AdamWStep& s, double weight_decay);

}  // namespace tessel

// Global-norm gradient clipping, in pieces that work on flat fp32 buffers and across ranks:
// each rank sums the squares of its gradient pieces, the sums are all-reduced (in double),
// norm = sqrt(total), and clip_scale gives the factor that AdamWStep::grad_scale applies.
//
// sum_of_squares is bitwise deterministic for a given n and data whatever the number of OpenMP
// threads (core/kernels/cpu/cpu_kernels.h on the CPU).
// Pure functions over caller-owned buffers; safe to call concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tessel {

// Σ x² in double over an F32 tensor, on the CPU (cpu::sum_of_squares) or on the device backend that made it (its
// fixed-order fp32 reduction, read back on the host: the call waits for the device).
double sum_of_squares(const Tensor& x);

// Σ over `pieces` (F32 tensors, all on the CPU or all on one device) of each piece's Σ x², added
// in order: the sum_of_squares of each, with one wait on a device for all of them.
double sum_of_squares(const std::vector<Tensor>& pieces);

// The factor that brings a gradient of L2 norm `norm` within `max_norm`, as
// torch.nn.utils.clip_grad_norm_: min(1, max_norm / (norm + 1e-6)). max_norm <= 0 turns
// clipping off (1). A non-finite norm gives 1: such a step is skipped (StepGuard), not clipped.
double clip_scale(double norm, double max_norm);

// True when no element is NaN or ±inf. x: (n).
bool all_finite(const float* x, int64_t n);

}  // namespace tessel

// Memory, checked before anything is allocated: the planner's estimate of what one rank of a run
// needs (parallel/planner/cost_model.h: weights, gradients, AdamW state, activations, buffers)
// against what the machine gives it. A config (or a checkpoint's stored config) whose model
// cannot fit gets an error naming the settings that size it, instead of an allocation that
// fails, or that the kernel's OOM killer ends, minutes in.
#pragma once

#include <string>

#include "core/config/config.h"

namespace tessel {

struct MemoryAvailable {
  double bytes = 0;
  std::string what;  // "this node's 23.4 GiB of memory shared by 2 ranks"
};

// The node's physical memory, shared evenly by `local_ranks` ranks.
MemoryAvailable host_memory(int local_ranks);

enum class MemoryUse {
  kTraining,   // weights, gradients, optimizer state, activations, buffers
  kInference,  // weights and one micro-batch's activations (eval, generate, import)
};

// Throws when the estimate for `config` on a layout of `dp` replicas exceeds `available`,
// naming the parts, the settings that size the largest, and what would fit.
void check_memory_fits(const Config& config, int dp, MemoryUse use, const MemoryAvailable& available);

}  // namespace tessel

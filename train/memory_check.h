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
// One GPU's memory (`total_bytes`, named `name`) as local rank `local_rank` of `local_ranks`
// gets it: local rank r computes on GPU r mod `gpus`, so the ranks on one GPU share it evenly.
MemoryAvailable device_memory(double total_bytes, const std::string& name, int gpus, int local_ranks, int local_rank);
// device_memory for this process's GPU; bytes 0 (unknown, nothing checked) without a CUDA
// build or a visible GPU.
MemoryAvailable device_memory_here(int local_ranks, int local_rank);

enum class MemoryUse {
  kTraining,   // weights, gradients, optimizer state, activations, buffers
  kInference,  // weights and one micro-batch's activations (eval, generate, import)
};

// Throws when the estimate for `config` on a layout of `dp` replicas exceeds `available`,
// naming the parts, the settings that size the largest, and what would fit.
void check_memory_fits(const Config& config, int dp, MemoryUse use, const MemoryAvailable& available);

}  // namespace tessel

#include "train/memory_check.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "parallel/planner/cost_model.h"

#ifdef TESSEL_HAVE_CUDA
#include "core/kernels/cuda/device_query.h"
#endif

namespace tessel {
namespace {

std::string gib(double bytes) { return fmt::format("{:.1f} GiB", bytes / (1u << 30)); }

}  // namespace

MemoryAvailable host_memory(int local_ranks) {
  const double bytes = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  MemoryAvailable m;
  m.bytes = bytes / std::max(1, local_ranks);
  m.what = "this node's " + gib(bytes) + " of memory" +
           (local_ranks > 1 ? " shared by " + std::to_string(local_ranks) + " ranks" : "");
  return m;
}

MemoryAvailable device_memory(double total_bytes, const std::string& name, int gpus, int local_ranks, int local_rank) {
  gpus = std::max(1, gpus);
  const int gpu = local_rank % gpus;
  // Local ranks gpu, gpu + gpus, gpu + 2·gpus, ... below local_ranks.
  const int sharing = std::max(1, (local_ranks - gpu + gpus - 1) / gpus);
  MemoryAvailable m;
  m.bytes = total_bytes / sharing;
  m.what = "GPU " + std::to_string(gpu) + "'s " + gib(total_bytes) + " (" + name + ")" +
           (sharing > 1 ? " shared by " + std::to_string(sharing) + " ranks" : "");
  return m;
}

MemoryAvailable device_memory_here(int local_ranks, int local_rank) {
#ifdef TESSEL_HAVE_CUDA
  const int gpus = cuda::device_count();
  if (gpus > 0) {
    const cuda::DeviceMemory d = cuda::device_memory(local_rank % gpus);
    return device_memory(static_cast<double>(d.total_bytes), d.name, gpus, local_ranks, local_rank);
  }
#else
  (void)local_ranks;
  (void)local_rank;
#endif
  return {};
}

void check_memory_fits(const Config& config, int dp, MemoryUse use, const MemoryAvailable& available) {
  if (available.bytes <= 0) return;  // unknown: nothing to compare with
  // The CPU backend has no device workspace; a GPU's is counted by the estimate on the device.
  const MemoryBreakdown m = estimate_memory(config, layout_of(config, dp), 0);
  const bool training = use == MemoryUse::kTraining;
  const double weights = m.weights, state = training ? m.gradients + m.optimizer : 0;
  const double activations = training ? m.activations + m.buffers : m.buffers;
  const double total = weights + state + activations;
  if (total <= available.bytes) return;
  const ModelConfig& model = config.model;
  const std::string model_keys = fmt::format(
      "model.layers ({}), model.d_model ({}), model.ffn_dim ({}), "
      "model.vocab_size ({})",
      model.layers, model.d_model, model.ffn_dim, model.vocab_size);
  const std::string batch_keys = fmt::format("batch.micro ({}), model.seq_len ({})", config.batch.micro, model.seq_len);
  const bool model_bound = weights + state >= activations;
  TESSEL_FAIL() << config.source << ": by the planner's estimate one rank needs " << gib(total) << " (weights "
                << gib(weights) << (training ? ", gradients and optimizer state " + gib(state) : std::string())
                << ", activations and buffers " << gib(activations) << "), more than " << available.what
                << "; the largest part is set by " << (model_bound ? model_keys : batch_keys) << "; hint: "
                << (model_bound ? (training ? "a smaller model, or split it with parallel.tp / parallel.pp and "
                                              "shard the optimizer with parallel.zero"
                                            : "a smaller model, or a machine with more memory")
                                : "a smaller batch.micro or model.seq_len, or parallel.recompute");
}

}  // namespace tessel

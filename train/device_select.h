// The device a rank computes on, from run.device: the CPU (null), or its GPU's
// DeviceContext (core/kernels/cuda/device_context.h) as the model's DeviceBackend.
//   cpu   the CPU.
//   cuda  a GPU: local rank r takes GPU r mod the GPUs it sees; an error without a CUDA build
//         or a visible GPU, or with a parallel.device_comm the node cannot run. Every layout
//         (tp, pp, dp, ZeRO) runs; its groups communicate as train/device_comm.h chooses.
//   auto  the CPU for now: the CUDA path is opt-in until it has been run on a GPU.
// precision.compute must be fp32 on the CPU; a GPU takes fp32, bf16 or fp16 (with loss scaling).
#pragma once

#include <memory>

#include "core/config/config.h"
#include "core/device_backend.h"

#ifdef TESSEL_HAVE_CUDA
#include "core/kernels/cuda/device_context.h"
#endif

namespace tessel {

// The checks alone (config, build, visible GPUs), so that a command can fail on them before
// it opens data or allocates anything.
void check_device(const Config& config);
std::unique_ptr<DeviceBackend> make_device(const Config& config, int local_rank);

#ifdef TESSEL_HAVE_CUDA
// run.attention's kernel (auto: cuda::kDefaultAttentionKernel).
cuda::AttentionKernel attention_kernel(AttentionKernelChoice choice);
#endif

}  // namespace tessel

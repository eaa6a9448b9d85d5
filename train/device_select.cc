#include "train/device_select.h"

#include "core/error.h"
#include "train/device_comm.h"

#ifdef TESSEL_HAVE_CUDA
#include "core/kernels/cuda/device_context.h"
#include "core/kernels/cuda/device_query.h"
#endif

namespace tessel {

void check_device(const Config& config) {
  const Precision precision = config.precision.compute;
  if (config.run.device != RunDevice::kCuda) {
    TESSEL_CHECK(precision == Precision::kFp32)
        << config.source << ": precision.compute=" << precision
        << ": the CPU backend computes in fp32; hint: set precision.compute=fp32, "
        << "or run.device=cuda on a GPU";
    return;
  }

#ifdef TESSEL_HAVE_CUDA
  TESSEL_CHECK(cuda::device_count() > 0)
      << config.source << ": run.device=cuda but no CUDA device is visible to this process; hint: nvidia-smi lists "
      << "the GPUs, CUDA_VISIBLE_DEVICES selects them, run.device=cpu trains on the CPU";
  device_comm_here(config);  // an impossible parallel.device_comm fails here, before any allocation
#else
  TESSEL_FAIL() << config.source << ": run.device=cuda but this build has no CUDA backend (nvcc was not found "
                << "when it was configured); hint: docs/gpu.md, or run.device=cpu";
#endif
}

#ifdef TESSEL_HAVE_CUDA
cuda::AttentionKernel attention_kernel(AttentionKernelChoice choice) {
  switch (choice) {
    case AttentionKernelChoice::kReference: return cuda::AttentionKernel::kReference;
    case AttentionKernelChoice::kFlash: return cuda::AttentionKernel::kFlash;
    case AttentionKernelChoice::kAuto: break;
  }
  return cuda::kDefaultAttentionKernel;
}
#endif

std::unique_ptr<DeviceBackend> make_device(const Config& config, int local_rank) {
  check_device(config);
  if (config.run.device != RunDevice::kCuda) return nullptr;
#ifdef TESSEL_HAVE_CUDA
  auto context = std::make_unique<cuda::DeviceContext>(local_rank % cuda::device_count());
  context->set_attention_kernel(attention_kernel(config.run.attention));
  return context;
#else
  (void)local_rank;
  return nullptr;  // not reached: check_device refuses cuda without the backend
#endif
}

}  // namespace tessel

#include "train/device_comm.h"

#include "core/error.h"
#include "parallel/comm/staged_communicator.h"
#include "parallel/rank_identity.h"

#ifdef TESSEL_HAVE_CUDA
#include "core/kernels/cuda/device_context.h"
#include "core/kernels/cuda/device_query.h"
#endif
#ifdef TESSEL_HAVE_NCCL
#include "parallel/comm/nccl_communicator.h"
#endif

namespace tessel {

DeviceComm resolve_device_comm(const Config& config, int local_ranks, int gpus, bool have_nccl) {
  const DeviceComm setting = config.parallel.device_comm;
  const bool sharing = gpus < 1 || local_ranks > gpus;
  if (setting == DeviceComm::kStaged) return DeviceComm::kStaged;
  if (setting == DeviceComm::kAuto) return have_nccl && !sharing ? DeviceComm::kNccl : DeviceComm::kStaged;
  TESSEL_CHECK(have_nccl) << config.source << ": parallel.device_comm=nccl but this build has no NCCL (nccl.h and "
                          << "libnccl were not found when it was configured); hint: parallel.device_comm=staged "
                          << "(or auto) carries device tensors over MPI";
  TESSEL_CHECK(!sharing) << config.source << ": parallel.device_comm=nccl with " << local_ranks
                         << " ranks on this node and " << gpus << " GPU" << (gpus == 1 ? "" : "s")
                         << " visible: local rank r computes on GPU r mod " << gpus << ", so ranks share a GPU, and "
                         << "NCCL refuses two ranks of one communicator on one device; hint: "
                         << "parallel.device_comm=staged (or auto), or at most " << gpus << " ranks per node";
  return DeviceComm::kNccl;
}

DeviceComm device_comm_here(const Config& config) {
  int gpus = 0;
#ifdef TESSEL_HAVE_CUDA
  gpus = cuda::device_count();
#endif
#ifdef TESSEL_HAVE_NCCL
  const bool have_nccl = true;
#else
  const bool have_nccl = false;
#endif
  return resolve_device_comm(config, rank_identity_from_environment().local_world_size, gpus, have_nccl);
}

std::unique_ptr<Communicator> device_group(std::unique_ptr<Communicator> group, DeviceBackend* device, DeviceComm kind,
                                           const Config& config, const std::string& name) {
  if (device == nullptr || group->size() == 1) return group;
#ifdef TESSEL_HAVE_NCCL
  if (auto* gpu = dynamic_cast<cuda::DeviceContext*>(device); gpu != nullptr && kind == DeviceComm::kNccl) {
    // NCCL, bootstrapped over the MPI group, on its own stream ordered after compute by events.
    auto nccl = NcclCommunicator::create(*group, gpu->index(), name, config.parallel.timeout_s);
    nccl->set_compute_stream(gpu->compute());
    return nccl;
  }
#else
  (void)kind;
  (void)config;
  (void)name;
#endif
  // Shared GPUs, a build without NCCL, or a device that is not a GPU (the emulated one of the
  // tests): staged through host memory.
  return std::make_unique<StagedCommunicator>(std::move(group));
}

}  // namespace tessel

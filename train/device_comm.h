// How a device rank's groups (tp, pp, dp and the shared key/value heads) communicate:
// parallel.device_comm.
//   nccl    NCCL (parallel/comm/nccl_communicator.h): each rank must own its GPU, since NCCL
//           refuses two ranks of one communicator on one device.
//   staged  device → host → MPI → device (parallel/comm/staged_communicator.h): any number of
//           ranks per GPU, and builds without NCCL.
//   auto    nccl when every rank of the node has a GPU of its own and the build has NCCL,
//           staged otherwise.
// The choice is made from the node's shape (ranks on it, GPUs it sees) before anything is
// allocated; an impossible setting is an error that says why and what to set.
#pragma once

#include <memory>
#include <string>

#include "core/comm/communicator.h"
#include "core/config/config.h"
#include "core/device_backend.h"

namespace tessel {

// What runs: never kAuto. local_ranks: ranks on this node; gpus: GPUs one rank sees (local
// rank r computes on GPU r mod gpus); have_nccl: the build has NCCL.
DeviceComm resolve_device_comm(const Config& config, int local_ranks, int gpus, bool have_nccl);

// resolve_device_comm for this process (its launcher's variables, the GPUs CUDA sees, the build).
DeviceComm device_comm_here(const Config& config);

// `group` (a CPU communicator) made able to carry `device`'s tensors as `kind` says; the group
// itself for a CPU model (device null) or a group of one. `name` names a NCCL communicator in
// logs. Collective over `group`.
std::unique_ptr<Communicator> device_group(std::unique_ptr<Communicator> group, DeviceBackend* device, DeviceComm kind,
                                           const Config& config, const std::string& name);

}  // namespace tessel

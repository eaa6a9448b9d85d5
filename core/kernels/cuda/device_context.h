// DeviceContext: one process's handle on one GPU for the step: the compute stream, the
// caching allocator every device tensor comes from, and the cuBLASLt Gemm.
//
// Created once per rank (it selects the device) and passed to whoever launches work there, as
// Topology and communicators are: there is no global device state. Tensors made here hold
// their block of the allocator until the last view of them is gone; the allocator outlives the
// context if such tensors do. Work is queued on compute() and nothing waits for it except the
// calls that say they block (to_host, synchronize). Communication runs on its own stream (the
// NCCL communicator's), ordered against compute() by events. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "core/caching_allocator.h"
#include "core/kernels/cuda/gemm.h"
#include "core/kernels/cuda/stream.h"
#include "core/tensor.h"

namespace tessel {
namespace cuda {

class DeviceContext {
 public:
  explicit DeviceContext(int device);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int device() const { return device_; }
  cudaStream_t compute() const { return compute_.get(); }
  Gemm& gemm() { return gemm_; }
  CachingAllocator& allocator();

  // Uninitialized / zero-filled device tensors for use on compute().
  Tensor empty(const Shape& shape, DType dtype);
  Tensor zeros(const Shape& shape, DType dtype);
  // A device copy of a CPU tensor (queued on compute(); the host buffer may be reused at once,
  // because pageable copies are staged before the call returns).
  Tensor to_device(const Tensor& host);
  // A CPU copy of a device tensor; blocks until compute() has produced it.
  Tensor to_host(const Tensor& device_tensor);
  // dst ← src, any pair of devices, same numel and dtype; queued on compute().
  void copy(const Tensor& dst, const Tensor& src);
  void synchronize() { compute_.synchronize(); }

  // "NVIDIA H200, 139.8 GiB, sm_90" for the start-up log.
  std::string describe() const;

 private:
  struct Memory;  // the CUDA MemoryBackend and the allocator over it, shared with tensors
  int device_;
  Stream compute_;
  Gemm gemm_;
  std::shared_ptr<Memory> memory_;
};

}  // namespace cuda
}  // namespace tessel

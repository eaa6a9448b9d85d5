// The CUDA backend's entry point for device discovery: how many CUDA devices this process sees.
// Built only when the CUDA toolkit is found (see core/CMakeLists.txt); the kernels of the CUDA
// backend join this folder one file per op.
#include "core/kernels/cuda/device_query.h"

#include <cuda_runtime.h>

namespace tessel {
namespace cuda {

int device_count() {
  int count = 0;
  // No device or no driver is not an error here: the caller falls back to the CPU.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

DeviceMemory device_memory(int device) {
  cudaDeviceProp prop{};
  DeviceMemory m;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return m;  // unknown: nothing is checked against it
  }
  m.total_bytes = prop.totalGlobalMem;
  m.name = prop.name;
  return m;
}

}  // namespace cuda
}  // namespace tessel

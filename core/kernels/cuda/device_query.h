// Device discovery for the CUDA backend; only declared when TESSEL_HAVE_CUDA is defined.
#pragma once

#include <cstddef>
#include <string>

namespace tessel {
namespace cuda {

// Number of CUDA devices visible to this process; 0 when there is no driver or device.
int device_count();

struct DeviceMemory {
  size_t total_bytes = 0;
  std::string name;  // "NVIDIA H200"
};
// Device `device`'s memory and name, from its properties (no context is made).
DeviceMemory device_memory(int device);

}  // namespace cuda
}  // namespace tessel

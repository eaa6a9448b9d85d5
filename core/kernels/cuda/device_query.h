// Device discovery for the CUDA backend; only declared when TESSEL_HAVE_CUDA is defined.
#pragma once

namespace tessel {
namespace cuda {

// Number of CUDA devices visible to this process; 0 when there is no driver or device.
int device_count();

}  // namespace cuda
}  // namespace tessel

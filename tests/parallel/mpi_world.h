// The MPI runtime and world communicator of a test process run under mpirun ([mpi] tests).
// MPI can start once per process, so they live as long as the process.
#pragma once

#include "parallel/comm/mpi_communicator.h"

namespace tessel {

inline MpiRuntime& test_mpi_runtime() {
  static MpiRuntime runtime;
  return runtime;
}

inline MpiCommunicator& test_world() {
  static std::unique_ptr<MpiCommunicator> world = MpiCommunicator::world(test_mpi_runtime(), 120.0);
  return *world;
}

}  // namespace tessel

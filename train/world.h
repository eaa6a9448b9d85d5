// World: the ranks of this job as this process sees them. Launched as several ranks (mpirun,
// `tessel launch`, srun), it starts MPI and communicates over it; alone, it is a group of one
// and MPI is never touched. Owned by the command that needs it; communicators split from it
// must be destroyed first. Distributed, it first gathers every rank's host and build: ranks of
// different Tessel builds refuse to start (train/rank_placement.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/comm/communicator.h"
#include "parallel/comm/mpi_runtime.h"
#include "parallel/rank_identity.h"
#include "train/rank_placement.h"

namespace tessel {

class World {
 public:
  // timeout_s: the collective watchdog (parallel.timeout_s; 0: none).
  explicit World(double timeout_s);
  ~World();

  Communicator& comm() { return *comm_; }
  const RankIdentity& identity() const { return identity_; }
  bool distributed() const { return runtime_ != nullptr; }
  // Every rank's host and build (one entry when alone).
  const RankPlacement& placement() const { return placement_; }

  // Ends the job with `code`: MPI_Abort when distributed (so no rank waits on this one),
  // else exit.
  [[noreturn]] void abort(int code);

  // Runs `body` and returns its status. Alone, errors propagate. Distributed, an error is
  // logged with the flight records (`records()`, or the world communicator's when empty) and
  // the job is aborted: one rank failing must not leave the others waiting in a collective.
  // `on_failure` (when given) gets the error first, e.g. to record it in the rank's heartbeat.
  int run_or_abort(const std::function<int()>& body, const std::function<std::string()>& records = {},
                   const std::function<void(const std::string&)>& on_failure = {});

 private:
  RankIdentity identity_;
  std::unique_ptr<MpiRuntime> runtime_;
  std::unique_ptr<Communicator> comm_;
  RankPlacement placement_;
};

}  // namespace tessel

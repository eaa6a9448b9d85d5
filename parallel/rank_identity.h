// Who this process is in a job: its global rank, its rank within the node (which selects the
// GPU and bounds the CPU threads), and the sizes of both.
//
// Read from the variables a launcher sets, in this order (REFERENCE.md, launcher variables):
//   OpenMPI   OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE   (mpirun, tessel launch)
//   Slurm     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE (or
//             SLURM_TASKS_PER_NODE's first count)                     (srun)
//   torchrun  RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
// and a single process (rank 0 of 1) when none is set. Pure: the environment is passed in.
#pragma once

#include <functional>
#include <string>

namespace tessel {

struct RankIdentity {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string source = "single";  // "openmpi" | "slurm" | "torchrun" | "single"
};

// Returns a variable's value, or nullptr when unset (std::getenv's contract).
using EnvLookup = std::function<const char*(const char*)>;

// Throws when the variables are malformed or inconsistent (a rank outside the world, say),
// naming the variables.
RankIdentity rank_identity(const EnvLookup& env);
RankIdentity rank_identity_from_environment();  // rank_identity(std::getenv)

// The number in variable `name`, or `fallback` when unset or empty; throws, naming the variable,
// when it is not a finite number.
double env_number(const EnvLookup& env, const char* name, double fallback);

}  // namespace tessel

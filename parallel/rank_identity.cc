#include "parallel/rank_identity.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace tessel {
namespace {

// The integer value of `name`, or `fallback` when unset. A value that is not a whole number
// is an error: a launcher that set it meant something by it.
int env_int(const EnvLookup& env, const char* name, int fallback) {
  const char* value = env(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  TESSEL_CHECK(*end == '\0' && v >= 0 && v < (1L << 30))
      << "environment variable " << name << "='" << value << "' is not a non-negative integer";
  return static_cast<int>(v);
}

// SLURM_TASKS_PER_NODE looks like "4(x2),3": the first node's count is this node's only when
// counts are uniform, so it is used only when SLURM_NTASKS_PER_NODE is absent.
int slurm_tasks_per_node(const EnvLookup& env) {
  int n = env_int(env, "SLURM_NTASKS_PER_NODE", 0);
  if (n > 0) return n;
  const char* value = env("SLURM_TASKS_PER_NODE");
  if (value == nullptr) return 1;
  return std::max(1, std::atoi(value));
}

}  // namespace

double env_number(const EnvLookup& env, const char* name, double fallback) {
  const char* value = env(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const double v = std::strtod(value, &end);
  TESSEL_CHECK(*end == '\0' && std::isfinite(v))
      << "environment variable " << name << "='" << value << "' is not a number";
  return v;
}

RankIdentity rank_identity(const EnvLookup& env) {
  RankIdentity id;
  if (env("OMPI_COMM_WORLD_RANK") != nullptr) {
    id.source = "openmpi";
    id.rank = env_int(env, "OMPI_COMM_WORLD_RANK", 0);
    id.world_size = env_int(env, "OMPI_COMM_WORLD_SIZE", 1);
    id.local_rank = env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
    id.local_world_size = env_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  } else if (env("SLURM_PROCID") != nullptr && env("SLURM_NTASKS") != nullptr) {
    id.source = "slurm";
    id.rank = env_int(env, "SLURM_PROCID", 0);
    id.world_size = env_int(env, "SLURM_NTASKS", 1);
    id.local_rank = env_int(env, "SLURM_LOCALID", 0);
    id.local_world_size = slurm_tasks_per_node(env);
  } else if (env("RANK") != nullptr && env("WORLD_SIZE") != nullptr) {
    id.source = "torchrun";
    id.rank = env_int(env, "RANK", 0);
    id.world_size = env_int(env, "WORLD_SIZE", 1);
    id.local_rank = env_int(env, "LOCAL_RANK", 0);
    id.local_world_size = env_int(env, "LOCAL_WORLD_SIZE", 1);
  }
  TESSEL_CHECK(id.world_size >= 1 && id.rank < id.world_size)
      << "rank " << id.rank << " is outside a world of " << id.world_size << " (from the " << id.source
      << " launcher variables)";
  TESSEL_CHECK(id.local_world_size >= 1 && id.local_rank < id.local_world_size && id.local_world_size <= id.world_size)
      << "local rank " << id.local_rank << " of " << id.local_world_size << " per node does not fit a world of "
      << id.world_size << " (from the " << id.source << " launcher variables)";
  return id;
}

RankIdentity rank_identity_from_environment() {
  return rank_identity([](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

}  // namespace tessel

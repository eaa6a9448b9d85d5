// `tessel launch`: starts the ranks of a job through OpenMPI's mpirun and supervises them.
//
//   tessel launch [--nproc-per-node N] [--hosts h1,h2 | --hostfile F] [--max-restarts K] [--min-hosts K]
//                 [--dry-run]
//                 CONFIG [--set ...]
//
// One node by default; --hosts or --hostfile for several (N ranks on each); inside a Slurm
// allocation (SLURM_JOB_ID set, no hosts given) mpirun takes the allocation's nodes. Each rank
// runs `tessel train CONFIG --set ...` and learns its place from OpenMPI's variables
// (parallel/rank_identity.h). The launcher sets the per-rank OpenMP/BLAS threads to the node's
// cores ÷ N unless OMP_NUM_THREADS is set, forwards the environment Tessel and its libraries
// read, adds --allow-run-as-root as root and --oversubscribe when N exceeds the cores, streams
// the ranks' output (every log line carries its rank), forwards SIGINT/SIGTERM/SIGUSR1 to mpirun and
// returns the job's exit status. mpirun ends the whole job when any rank dies, and a rank that
// fails with an error aborts the job itself (train/world.h), so no rank waits forever.
// With --max-restarts K, a job that fails (not one stopped by a signal to the launcher) is
// started again, up to K times, resuming from the newest complete checkpoint. The ranks beat
// into run.out_dir/heartbeats (train/heartbeat.h): when one fails and mpirun has not ended the
// job 5 s later (it waits on a host that is gone), the launcher kills it, and its error names
// the ranks and hosts that stopped beating first. A restart skips hosts that no longer answer
// when --min-hosts K allows (K or more remain), with fewer data-parallel replicas and more
// accumulation for the same global batch; it tells the ranks what was lost (TESSEL_RESTARTS,
// TESSEL_FAILED_AT, TESSEL_FAILED_STEP, TESSEL_JOB_START) for their goodput.
#pragma once

#include <string>
#include <vector>

#include "core/config/config.h"
#include "parallel/rank_identity.h"

namespace tessel {

struct LaunchRequest {
  std::string config;                  // CONFIG
  std::vector<std::string> overrides;  // --set
  int nproc_per_node = 0;              // 0: from the config (tp·pp·dp when dp is a number) or Slurm
  std::vector<std::string> hosts;      // --hosts
  std::string hostfile;                // --hostfile
  int max_restarts = 0;
  int min_hosts = 0;  // a restart may go on with the hosts that answer when at least this many do (0: all)
  bool dry_run = false;
  std::vector<std::string> env;  // NAME=VALUE for every rank (the launcher's own, for a restart)
};

// The request of `tessel launch`'s arguments (CONFIG, the flags, --set); throws naming the flag.
LaunchRequest parse_launch_request(const std::vector<std::string>& args);

// What the launcher knows about the machine it runs on.
struct LaunchHost {
  std::string tessel;  // this executable
  std::string mpirun;  // mpirun found on PATH ("" when none)
  int cores = 1;
  bool root = false;
  EnvLookup env;
  std::vector<std::string> env_names;  // every variable set here (for the prefix forwarding)
};

struct LaunchPlan {
  std::vector<std::string> argv;  // the mpirun command
  int nodes = 1;
  int nproc_per_node = 1;
  int threads_per_rank = 1;
  std::string where;  // "this node", "hosts a,b", "hostfile F", "the Slurm allocation"
};

// Pure: checks the request (hostfile readable, hosts named once, N ≥ 1, a world size the config
// accepts) and builds the mpirun command. Throws with a hint when mpirun is missing.
LaunchPlan plan_launch(const LaunchRequest& request, const ParallelConfig& parallel, const LaunchHost& host);

// Plans the job (and its restarts), checks the grid and the pipeline schedule, checks the hosts
// resolve, then runs and supervises mpirun; with r.dry_run prints the mpirun command instead.
// `config` is r.config loaded with r.overrides. Returns the job's exit status.
int launch_job(const LaunchRequest& r, const Config& config);
// "a,b,,c" → {"a", "b", "c"}: the host names of --hosts.
std::vector<std::string> split_list(const std::string& text);

// The argv as one shell-quoted line.
std::string shell_join(const std::vector<std::string>& argv);

// The path of the running `tessel` executable (/proc/self/exe), for starting more of it.
std::string tessel_executable();

}  // namespace tessel

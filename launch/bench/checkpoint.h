// `tessel bench checkpoint CONFIG [--set ...] [--saves N] [--dir DIR]`: checkpoint throughput of
// the config's layout (under mpirun or tessel launch, any tp × pp × dp): synchronous save and
// load in GB/s, and what an asynchronous save costs the step loop (the copy it waits for, and
// the slowdown of the steps that run while the background thread writes). One JSON line from
// rank 0. Trains on synthetic tokens; the checkpoints go to DIR (default a temporary directory,
// removed afterwards).
#pragma once

#include <string>
#include <vector>

namespace tessel {

int run_bench_checkpoint(const std::vector<std::string>& args);

}  // namespace tessel

// `tessel tune CONFIG [--gpus N] [--hardware NAME] [--top K] [--steps S] [--set key=value ...]
//  [--out FILE]`: runs the top K layouts `tessel plan` predicts for N ranks of this machine
// (default: one per core, hardware cpu-local), each for S steps of `tessel bench step` under
// mpirun, prints predicted against measured, writes the fastest measured layout as a config
// file (default <run.out_dir>/tuned.yaml), and records the measured / predicted ratios, which
// later plans on the same hardware apply (parallel/planner/hardware.h).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace tessel {

int run_tune_command(const std::vector<std::string>& args);
int run_tune_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace tessel

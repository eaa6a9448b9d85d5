// StopSignal: turns SIGTERM, SIGINT and SIGUSR1 into a request to stop training cleanly.
//
// The first such signal sets a flag; the trainer sees it between steps, saves a checkpoint and
// returns (Slurm's preemption notice, a Ctrl-C). A second SIGTERM or SIGINT ends the process
// at once, as if no handler were installed. `tessel launch` turns its own first SIGTERM/SIGINT
// into SIGUSR1 for mpirun, which passes it on to every rank.
//
// Signal handlers can only reach process-wide state, so the flag is one static atomic; at most
// one StopSignal exists at a time, and it restores the previous handlers when destroyed.
#pragma once

#include <csignal>

namespace tessel {

class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Whether a stop was asked for, and by which signal (0: none).
  bool requested() const;
  int signal_number() const;

 private:
  struct sigaction previous_[3];
};

}  // namespace tessel

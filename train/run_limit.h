// RunLimit: run.exit_after_steps and run.exit_after_minutes, a job's own time limit. Asked once
// after every step (the Trainer's stop check, which every rank then agrees on), it says when
// this run has done its steps or used its minutes; the trainer then saves a checkpoint and
// stops, so that the next job resumes on the same schedule (run.steps is unchanged).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/config/config.h"

namespace tessel {

class RunLimit {
 public:
  explicit RunLimit(const RunConfig& run,
                    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now());
  // Counts one more step of this run; true once a limit is reached.
  bool step_done();
  // "run.exit_after_steps (3) reached after 3 steps" or "... (0.5 minutes) ...": empty before.
  const std::string& reason() const { return reason_; }

 private:
  int64_t max_steps_;
  double max_minutes_;
  std::chrono::steady_clock::time_point start_;
  int64_t steps_ = 0;
  std::string reason_;
};

}  // namespace tessel

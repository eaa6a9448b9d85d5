// StepGuard: the policy for optimizer steps with a non-finite loss or gradient norm.
//
// Such a step is skipped (no parameter update, the caller logs it); a streak of more than
// max_consecutive skipped steps stops the run with an Error that says what to change. The
// counters are plain state (StepGuard::State) so a checkpoint can save and restore them and a
// resumed run sees the same streak. Not thread-safe: one guard per training loop, used by the
// thread that runs the step. All ranks must feed it the same (all-reduced) values so they all
// skip or stop together.
#pragma once

#include <cstdint>

namespace tessel {

class StepGuard {
 public:
  struct State {
    int64_t consecutive = 0;    // skipped steps since the last good one
    int64_t total_skipped = 0;  // skipped steps in the whole run
  };

  // max_consecutive: optim.max_skipped_steps; 0 stops at the first non-finite step.
  explicit StepGuard(int64_t max_consecutive);

  // Returns true (and records a skip) when loss or grad_norm is NaN or ±inf; a finite pair
  // ends the streak and returns false. Throws tessel::Error when the streak exceeds
  // max_consecutive. `step` (0-based, optional) only names the step in that error.
  bool should_skip(double loss, double grad_norm, int64_t step = -1);

  const State& state() const { return state_; }
  void restore(const State& state) { state_ = state; }
  int64_t max_consecutive() const { return max_consecutive_; }

 private:
  int64_t max_consecutive_;
  State state_;
};

}  // namespace tessel

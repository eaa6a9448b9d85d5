#include "train/run_limit.h"

#include <sstream>

namespace tessel {

RunLimit::RunLimit(const RunConfig& run, std::chrono::steady_clock::time_point start)
    : max_steps_(run.exit_after_steps), max_minutes_(run.exit_after_minutes), start_(start) {}

bool RunLimit::step_done() {
  ++steps_;
  if (!reason_.empty()) return true;
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() / 60;
  std::ostringstream why;
  if (max_steps_ > 0 && steps_ >= max_steps_) {
    why << "run.exit_after_steps (" << max_steps_ << ") reached after " << steps_ << " steps of this run";
  } else if (max_minutes_ > 0 && minutes >= max_minutes_) {
    why << "run.exit_after_minutes (" << max_minutes_ << ") reached after " << steps_ << " steps of this run, "
        << minutes << " minutes";
  }
  reason_ = why.str();
  return !reason_.empty();
}

}  // namespace tessel

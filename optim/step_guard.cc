// Non-finite step policy; see step_guard.h.
#include "optim/step_guard.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace tessel {

StepGuard::StepGuard(int64_t max_consecutive) : max_consecutive_(max_consecutive) {
  TESSEL_CHECK(max_consecutive >= 0) << "StepGuard: max_consecutive (optim.max_skipped_steps) must be >= 0, found "
                                     << max_consecutive;
}

bool StepGuard::should_skip(double loss, double grad_norm, int64_t step) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) {
    state_.consecutive = 0;
    return false;
  }
  ++state_.consecutive;
  ++state_.total_skipped;
  if (state_.consecutive > max_consecutive_) {
    std::ostringstream last;
    last << "loss=" << loss << " grad_norm=" << grad_norm;
    if (step >= 0) last << " at step " << step;
    TESSEL_FAIL() << state_.consecutive << " consecutive steps had non-finite loss or gradients "
                  << "(last: " << last.str() << "); hint: lower optim.lr, check data, or raise "
                  << "optim.max_skipped_steps (now " << max_consecutive_ << ")";
  }
  return true;
}

}  // namespace tessel

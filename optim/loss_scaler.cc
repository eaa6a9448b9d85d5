#include "optim/loss_scaler.h"

#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace tessel {

LossScaler::LossScaler(bool enabled, double setting) : enabled_(enabled) {
  if (!enabled_) return;
  if (setting == 0) {
    dynamic_ = true;
    state_.scale = kDynamicInitial;
    return;
  }
  TESSEL_CHECK(setting > 0 && std::isfinite(setting))
      << "precision.loss_scale: expected 'dynamic' (0) or a positive number, got " << setting;
  state_.scale = setting;
}

bool LossScaler::overflowed(bool nonfinite, int64_t step) {
  if (!enabled_ || !dynamic_) return false;
  if (nonfinite) {
    state_.scale *= 0.5;
    state_.good_steps = 0;
    TESSEL_CHECK(state_.scale >= kMinScale)
        << "step " << step + 1 << ": the gradients overflow fp16 even with the loss scale at " << state_.scale * 2
        << " (dynamic scaling halved it from " << kDynamicInitial
        << " on every overflow); hint: the run has diverged: lower optim.lr, or train in bf16 "
        << "(precision.compute=bf16), whose range is fp32's";
    return true;
  }
  return false;
}

void LossScaler::applied() {
  if (!enabled_ || !dynamic_) return;
  if (++state_.good_steps >= kGrowthInterval) {
    state_.scale *= 2.0;
    state_.good_steps = 0;
  }
}

void LossScaler::restore(const State& state) {
  if (!enabled_) return;
  TESSEL_CHECK(state.scale > 0 && std::isfinite(state.scale))
      << "checkpointed loss scale " << state.scale << " is not a positive number";
  // A fixed scale is the config's: a checkpoint of another setting does not override it.
  if (dynamic_) state_ = state;
}

}  // namespace tessel

// LossScaler: loss scaling for fp16 training (precision.loss_scale), as PyTorch's GradScaler.
//
// fp16 has a narrow range: small gradients underflow to zero. The loss (hence every gradient)
// is multiplied by `scale` before backward, and the update divides it out again. A dynamic
// scaler starts at 2^16, halves whenever a step's gradients overflow (that step is skipped: it
// is expected while the scale finds its level, and is not a non-finite step for StepGuard),
// and doubles after `growth_interval` good steps in a row. A fixed scale never changes; an
// overflow under it is a genuine non-finite step. Disabled (fp32, bf16): the scale is 1 and
// nothing is skipped here. The dynamic scale is a power of two, so scaling and unscaling are exact in binary
// floating point (a fixed scale may be any positive number; one that is not a power of two
// rounds once when it is divided out). The state (scale, good steps) is checkpointed. Not
// thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace tessel {

class LossScaler {
 public:
  struct State {
    double scale = 1.0;
    int64_t good_steps = 0;  // steps since the scale last changed
  };

  static constexpr double kDynamicInitial = 65536.0;  // 2^16, as torch.cuda.amp.GradScaler
  static constexpr int64_t kGrowthInterval = 2000;
  static constexpr double kMinScale = 1.0;  // below this scaling no longer helps: stop

  // enabled: precision.compute is fp16. setting: precision.loss_scale (0 for dynamic, or a fixed scale).
  LossScaler(bool enabled, double setting);

  bool enabled() const { return enabled_; }
  bool dynamic() const { return dynamic_; }
  double scale() const { return state_.scale; }

  // After a step's backward, with whether its (scaled) gradients hold an inf or NaN while its
  // loss is finite. Returns true when the step must be skipped as an overflow of a dynamic
  // scale (the scale halves). Throws tessel::Error when a dynamic scale would fall below
  // kMinScale: the gradients are non-finite at any scale. `step` names the step in that error.
  bool overflowed(bool nonfinite, int64_t step);
  // An update was applied: counts a good step, doubling a dynamic scale after
  // kGrowthInterval of them.
  void applied();

  const State& state() const { return state_; }
  void restore(const State& state);

 private:
  bool enabled_;
  bool dynamic_ = false;
  State state_;
};

}  // namespace tessel

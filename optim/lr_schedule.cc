// Learning-rate schedules; see lr_schedule.h.
#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tessel {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kWsdDefaultDecayDivisor = 5;  // wsd decays over the last 20% by default

// Fraction of the decay phase [start, start + length) done at `step`, in [0, 1].
double progress(int64_t step, int64_t start, int64_t length) {
  if (length <= 0) return step >= start ? 1.0 : 0.0;
  const double done = static_cast<double>(step - start) / static_cast<double>(length);
  return std::clamp(done, 0.0, 1.0);
}

// (1−t)·from + t·to: exactly `from` at t = 0 and exactly `to` at t = 1.
double interpolate(double from, double to, double t) { return (1.0 - t) * from + t * to; }

}  // namespace

double learning_rate(const OptimConfig& o, int64_t total_steps, int64_t step) {
  TESSEL_CHECK(step >= 0) << "learning_rate: step is 0-based, found " << step;
  if (step < o.warmup_steps) {
    return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  }
  if (o.schedule == LrSchedule::kConstant) return o.lr;
  if (o.schedule == LrSchedule::kLinear || o.schedule == LrSchedule::kCosine) {
    const int64_t length = o.decay_steps > 0 ? o.decay_steps : total_steps - o.warmup_steps;
    const double t = progress(step, o.warmup_steps, length);
    if (o.schedule == LrSchedule::kLinear) return interpolate(o.lr, o.min_lr, t);
    return o.min_lr + (o.lr - o.min_lr) * 0.5 * (1.0 + std::cos(kPi * t));
  }
  if (o.schedule == LrSchedule::kWsd) {
    const int64_t length =
        o.decay_steps > 0 ? o.decay_steps : std::max<int64_t>(1, total_steps / kWsdDefaultDecayDivisor);
    // Decay never starts inside warmup, even when the run is too short for both.
    const int64_t start = std::max(o.warmup_steps, total_steps - length);
    return interpolate(o.lr, o.min_lr, progress(step, start, length));
  }
  TESSEL_FAIL() << "optim.schedule: invalid value " << static_cast<int>(o.schedule)
                << "; valid values: constant, linear, cosine, wsd";
}

}  // namespace tessel

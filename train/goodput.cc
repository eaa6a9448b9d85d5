#include "train/goodput.h"

#include <algorithm>
#include <cstdio>

namespace tessel {

Goodput::Goodput(const EnvLookup& env, int64_t resumed_step, double now) {
  restarts_ = static_cast<int>(env_number(env, "TESSEL_RESTARTS", 0));
  job_start_ = env_number(env, "TESSEL_JOB_START", now);
  if (restarts_ > 0) {
    failed_at_ = env_number(env, "TESSEL_FAILED_AT", now);
    const double failed_step = env_number(env, "TESSEL_FAILED_STEP", static_cast<double>(resumed_step));
    steps_lost_ = std::max<int64_t>(0, static_cast<int64_t>(failed_step) - resumed_step);
  }
}

std::vector<std::pair<std::string, double>> Goodput::after_step(double step_s, double now, bool last) {
  std::vector<std::pair<std::string, double>> out;
  productive_s_ += step_s;
  if (first_step_ && restarts_ > 0) {
    recovery_s_ = now - failed_at_;
    out.push_back({"restarts", restarts_});
    out.push_back({"steps_recomputed", static_cast<double>(steps_lost_)});
    out.push_back({"recovery_s", recovery_s_});
  }
  first_step_ = false;
  if (last) {
    const double wall = std::max(now - job_start_, 1e-9);
    out.push_back({"productive_s", productive_s_});
    out.push_back({"wall_s", wall});
    out.push_back({"goodput", std::min(1.0, productive_s_ / wall)});
  }
  return out;
}

std::string Goodput::summary(double now) const {
  const double wall = std::max(now - job_start_, 1e-9);
  char text[256];
  if (restarts_ > 0) {
    std::snprintf(text, sizeof(text),
                  "%d restart%s, %lld step%s recomputed, %.1f s from the failure to the first step after resuming; ",
                  restarts_, restarts_ == 1 ? "" : "s", static_cast<long long>(steps_lost_),
                  steps_lost_ == 1 ? "" : "s", recovery_s_);
  } else {
    text[0] = '\0';
  }
  char tail[128];
  std::snprintf(tail, sizeof(tail), "productive %.1f s of %.1f s wall time (%.0f%%)", productive_s_, wall,
                100.0 * std::min(1.0, productive_s_ / wall));
  return std::string(text) + tail;
}

}  // namespace tessel

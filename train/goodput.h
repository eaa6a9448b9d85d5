// Goodput: how much of a job's wall time went into steps that count, across the restarts of
// `tessel launch --max-restarts`.
//
// The launcher tells a restarted attempt what was lost (launch/launcher.h): TESSEL_RESTARTS (the
// restarts so far), TESSEL_FAILED_AT (when the failure was seen, seconds since the epoch),
// TESSEL_FAILED_STEP (the furthest step any rank had finished) and TESSEL_JOB_START. After the
// first step of a resumed attempt, rank 0 records the restarts, the steps lost and recomputed
// (from the checkpoint's step to the failed step) and the time from the failure to that step
// (detection, restart, loading and the step itself). At the end it records the productive time
// (the step times of the steps metrics.jsonl keeps that this job ran: earlier attempts' up to the
// checkpoint this one resumed from, and this attempt's) over the wall time since the job started.
// A job is one `tessel launch` with its restarts: a run resumed by a new job (a requeued Slurm
// job, say) counts from that job's start, not the first job's.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parallel/rank_identity.h"

namespace tessel {

class Goodput {
 public:
  // resumed_step: this attempt's first step (0 for a fresh run); now: seconds since the epoch.
  // Throws when a TESSEL_* variable is not a number.
  Goodput(const EnvLookup& env, int64_t resumed_step, double now);

  int restarts() const { return restarts_; }
  // When the job began: TESSEL_JOB_START, or this attempt's start outside `tessel launch`.
  double job_start() const { return job_start_; }
  // Step time earlier attempts of this job spent on steps metrics.jsonl still keeps.
  void add_earlier_steps(double seconds) { productive_s_ += seconds; }
  // After each step: what to add to its metrics (the recovery, after the first step of a
  // restarted attempt; the goodput, after the last step).
  std::vector<std::pair<std::string, double>> after_step(double step_s, double now, bool last);
  // "1 restart, 38 steps recomputed, 12.3 s from failure to the first step after resuming;
  // productive 40.1 s of 52.0 s wall time (77%)".
  std::string summary(double now) const;

 private:
  int restarts_ = 0;
  double failed_at_ = 0;    // 0: this attempt is not a restart
  int64_t steps_lost_ = 0;  // recomputed after the resume
  double job_start_ = 0;
  double productive_s_ = 0;
  double recovery_s_ = -1;  // failure to the first step after resuming; < 0: not yet
  bool first_step_ = true;
};

}  // namespace tessel

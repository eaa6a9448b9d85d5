// What the ranks' heartbeats (train/heartbeat.h) say about a job, for `tessel launch`: whether
// a rank has failed, the furthest step reached, and, once the job has failed, which ranks and
// hosts stopped first.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tessel {

struct RankBeat {
  int rank = -1;
  std::string host;
  int64_t pid = 0;
  int64_t step = 0;   // the last step the rank finished
  double time = 0;    // its last beat, seconds since the epoch
  std::string state;  // "training", "failed" or "done"
  std::string error;  // failed: the error's first line
};

// Every rank_NNNNN.json in `dir`, by rank; files that cannot be read or parsed are skipped.
std::vector<RankBeat> read_heartbeats(const std::string& dir);

struct JobHealth {
  bool failed = false;    // some rank recorded a failure
  double failed_at = 0;   // the earliest recorded failure (seconds since the epoch)
  int64_t last_step = 0;  // the furthest step any rank finished
};
JobHealth job_health(const std::vector<RankBeat>& beats);

// The launcher's running view of a job's heartbeats, looked at about once a second. A rank whose
// last beat lags the freshest by stale_s or more stopped beating (dead, stopped, or its host
// gone) while the others still beat (waiting in a collective for it, until parallel.timeout_s).
// What was seen before the first failure is kept: once a job fails, its cleanup may wake a
// stopped rank for a last beat.
class JobWatch {
 public:
  explicit JobWatch(double stale_s) : stale_s_(stale_s) {}
  void observe(const std::vector<RankBeat>& beats);
  const JobHealth& health() const { return health_; }
  // Ranks seen stopped before the failure: their last beat, and how far it lagged.
  struct Stopped {
    RankBeat beat;
    double lag_s = 0;
  };
  const std::vector<Stopped>& stopped() const { return stopped_; }

 private:
  double stale_s_;
  JobHealth health_;
  std::vector<Stopped> stopped_;
};

// What the launcher reports when a job of `world_size` ranks fails: the first failure, the
// ranks that never beat, and those the watch saw stop (or, when it saw none, whose last beat
// lags the freshest by `stale_s`), grouped by host. A host that `reachable` says no longer
// answers is gone, whether its ranks stopped (the host died) or beat on (its network was cut);
// *lost_hosts gets those. An empty `reachable` probes nothing (a job on one node).
std::string describe_failure(const std::vector<RankBeat>& beats, int world_size, const JobWatch& watch, double stale_s,
                             const std::function<bool(const std::string&)>& reachable,
                             std::vector<std::string>* lost_hosts);

}  // namespace tessel

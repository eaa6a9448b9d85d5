// Heartbeat: this rank's sign of life for whoever supervises the job (`tessel launch`).
//
// A thread of its own rewrites heartbeat_dir(run.out_dir)/rank_NNNNN.json about once a second
// with the rank's host, pid, the step it last finished and the time; a rank whose process is
// stopped, hung in the kernel or gone (with its host) stops beating, while one that waits in a
// collective keeps beating. A rank that fails records its error there before the job aborts, and
// one that ends records that. When a job fails, the launcher compares every rank's last beat
// (launch/job_health.h) to name the ranks and hosts that stopped first. The files are written
// under a temporary name and renamed, so a reader never sees a torn one; the file is written
// outside the lock set_step takes, so a slow filesystem never holds up training. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace tessel {

// Where the ranks of a job beat: TESSEL_HEARTBEAT_DIR when set (`tessel launch` gives each job
// attempt a directory of its own, so that two launches never read each other's beats), else
// <out_dir>/heartbeats.
std::string heartbeat_dir(const std::string& out_dir);

class Heartbeat {
 public:
  Heartbeat(const std::string& out_dir, int rank, const std::string& host, double period_s = 1.0);
  ~Heartbeat();  // a last beat with state "done" (unless failed), then the thread ends
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void set_step(int64_t step);
  // Records the error (its first line) at once, with state "failed".
  void failed(const std::string& error);

 private:
  void beat();  // writes the file from the current state (takes mu_, then io_mu_)
  void loop();

  std::string dir_, path_;
  int rank_;
  std::string host_;
  double period_s_;
  std::mutex mu_;     // the state below
  std::mutex io_mu_;  // one write of the file at a time
  std::condition_variable wake_;
  bool stop_ = false;
  int64_t step_ = 0;
  std::string state_ = "training";
  std::string error_;
  std::thread thread_;
};

}  // namespace tessel

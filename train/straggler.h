// Straggler detection: which rank holds the others up, and by how much.
//
// Each rank adds up its own work over a log interval: its step times less the time it waited
// for the data-parallel reduction (a straggler's peers wait for it there; the straggler does
// not). At each logged step every rank's sum is gathered; the slowest over the median is the
// slowdown. metrics.jsonl records the slowest rank and its slowdown; from 1.25 on, the progress
// line shows them and a warning names the rank's host. Collective over the world at the steps
// it gathers (every rank at the same steps).
#pragma once

#include <string>
#include <vector>

#include "core/comm/communicator.h"

namespace tessel {

// A slowdown from which a rank is reported as a straggler.
constexpr double kStragglerThreshold = 1.25;

class StragglerMonitor {
 public:
  // hosts: by world rank (empty: ranks are named by number only).
  StragglerMonitor(Communicator& world, std::vector<std::string> hosts, double threshold = kStragglerThreshold);

  struct Report {
    int rank = 0;             // the slowest rank over the interval
    std::string host;         // its host ("" when unknown)
    double slowdown = 1;      // its work over the median rank's
    bool straggling = false;  // slowdown >= threshold
  };

  void add(double work_s) { work_s_ += work_s; }
  // Collective: gathers the interval's work from every rank and starts the next interval.
  Report gather();
  double threshold() const { return threshold_; }

 private:
  Communicator& world_;
  std::vector<std::string> hosts_;
  double threshold_;
  double work_s_ = 0;
};

}  // namespace tessel

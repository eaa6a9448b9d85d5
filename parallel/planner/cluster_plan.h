// Planning for a mixed cluster (`tessel plan --cluster FILE`): groups of nodes with GPUs of
// different kinds (cluster.h). Two ways to use every GPU, each searched over the layouts the
// single-kind planner enumerates:
//   - stages across groups: every data-parallel replica's pipeline runs its first stages on one
//     group and the rest on the next, with unequal layer counts so that the stages take equal
//     time (parallel.pipeline_split);
//   - replicas per group: each data-parallel replica lies within one group, and replicas run
//     unequal numbers of micro-batches so that they finish together (batch.shares), their
//     gradients weighted by tokens.
// Against them: the best plan on each group alone, and the whole cluster planned as if every
// GPU were the slowest kind. The planner of one kind (planner.h) estimates every candidate.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "parallel/planner/cluster.h"
#include "parallel/planner/planner.h"

namespace tessel {

struct ClusterCandidate {
  std::string strategy;   // "stages across groups", "replicas per group", "<group> alone", "all as <hardware>"
  int gpus = 0;           // GPUs it uses
  PlanEstimate estimate;  // its step, throughput, and the memory of the rank nearest its GPU's limit
  // The --set overrides that run it: every layout knob, and parallel.pipeline_split or
  // batch.shares with the rank order that puts each group's ranks on its hosts.
  std::vector<std::string> set;
  std::vector<std::string> placement;  // one line per group: its ranks and what they hold
};

struct ClusterPlan {
  std::vector<ClusterCandidate> mixed;         // the best of each way to use every group, fastest first
  std::vector<ClusterCandidate> alone;         // the best plan of each group alone (those that fit)
  std::optional<ClusterCandidate> as_slowest;  // every GPU planned as the slowest kind
  const ClusterCandidate* best() const;        // the fastest of all the above
  int considered = 0;                          // mixed candidates estimated
  std::vector<std::string> reasons;            // why the best wins, and the gains
};

// Throws when no plan of any kind fits, saying why.
ClusterPlan plan_cluster(const Config& config, const Cluster& cluster, const PlanConstraints& fixed,
                         double margin = 0.1, const Framework& framework = {});

}  // namespace tessel

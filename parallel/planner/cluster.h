// Cluster: the GPUs a mixed cluster offers the planner (`tessel plan --cluster FILE`): groups of
// nodes, each of one hardware profile, and the link between groups.
//
//   groups:
//     - {name: fast, hardware: h800, nodes: 4}
//     - {name: big, hardware: h20, nodes: 8}
//   between_groups: {bw_gbs: 50, latency_us: 10}   # per GPU, each direction
//
// between_groups is optional: absent, the slowest of the groups' own inter-node links.
#pragma once

#include <string>
#include <vector>

#include "parallel/planner/hardware.h"

namespace tessel {

struct ClusterGroup {
  std::string name;  // the file's, or the hardware's name
  HardwareProfile hw;
  int nodes = 0;
  int gpus() const { return nodes * hw.gpus_per_node; }
};

struct Cluster {
  std::string path;
  std::vector<ClusterGroup> groups;  // in the file's order
  double between_bw_gbs = 0, between_latency_us = 0;
  int gpus() const;
};

// Reads and checks a cluster file. Errors name the file and line: no groups, a group without
// hardware or with unknown hardware, a group of 0 nodes (or a count that is not a whole number),
// unknown keys, a link that is not positive.
Cluster load_cluster(const std::string& path);

}  // namespace tessel

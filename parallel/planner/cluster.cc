#include "parallel/planner/cluster.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "parallel/planner/profile_file.h"

namespace tessel {

int Cluster::gpus() const {
  int n = 0;
  for (const ClusterGroup& g : groups) n += g.gpus();
  return n;
}

namespace {

// "path:line: " of a node, for errors.
std::string at(const std::string& path, const YAML::Node& n) {
  return path + ":" + std::to_string(n.Mark().line + 1) + ": ";
}

}  // namespace

Cluster load_cluster(const std::string& path) {
  YAML::Node y;
  try {
    y = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    TESSEL_FAIL() << "cannot read the cluster file " << path << "; hint: --cluster takes a YAML file of node groups "
                  << "(docs/planner.md, \"Mixed clusters\")";
  } catch (const YAML::Exception& e) {
    TESSEL_FAIL() << path << ":" << e.mark.line + 1 << ": " << e.msg;
  }
  TESSEL_CHECK(y.IsMap()) << path << ": a cluster file is a map with 'groups' (and 'between_groups')";
  only_known_keys(path, y, {"groups", "between_groups"}, "the cluster file");
  const YAML::Node groups = y["groups"];
  TESSEL_CHECK(groups && groups.IsSequence() && groups.size() > 0)
      << path << ": 'groups' must list the node groups, e.g. groups: [{hardware: h800, nodes: 4}, {hardware: h20, "
      << "nodes: 8}]";
  Cluster c;
  c.path = path;
  std::set<std::string> names;
  for (const YAML::Node& g : groups) {
    TESSEL_CHECK(g.IsMap()) << at(path, g) << "a group is a map {name, hardware, nodes}";
    only_known_keys(path, g, {"hardware", "name", "nodes"}, "a group");
    TESSEL_CHECK(g["hardware"] && g["hardware"].IsScalar())
        << at(path, g) << "the group has no 'hardware' (a profile name from configs/hardware, or a path)";
    ClusterGroup group;
    try {
      group.hw = load_hardware(g["hardware"].Scalar());
    } catch (const Error& e) {
      TESSEL_FAIL() << at(path, g["hardware"]) << e.what();
    }
    const YAML::Node nodes = g["nodes"];
    TESSEL_CHECK(nodes && nodes.IsScalar())
        << at(path, g) << "the group has no 'nodes' (how many nodes of " << group.hw.name << ")";
    double n = 0;
    try {
      n = nodes.as<double>();
    } catch (const YAML::Exception&) {
      TESSEL_FAIL() << at(path, nodes) << "'nodes' must be a whole number, found '" << nodes.Scalar() << "'";
    }
    TESSEL_CHECK(n >= 1 && n == std::floor(n) && n <= 1e6)
        << at(path, nodes) << "a group of " << nodes.Scalar() << " nodes; expected a whole number of at least 1";
    group.nodes = static_cast<int>(n);
    group.name = g["name"] ? g["name"].Scalar() : group.hw.name;
    TESSEL_CHECK(names.insert(group.name).second)
        << at(path, g) << "two groups are named '" << group.name << "'; give each a distinct 'name'";
    c.groups.push_back(group);
  }
  c.between_bw_gbs = c.groups.front().hw.inter_node_bw_gbs;
  c.between_latency_us = c.groups.front().hw.inter_node_latency_us;
  for (const ClusterGroup& g : c.groups) {
    c.between_bw_gbs = std::min(c.between_bw_gbs, g.hw.inter_node_bw_gbs);
    c.between_latency_us = std::max(c.between_latency_us, g.hw.inter_node_latency_us);
  }
  if (const YAML::Node link = y["between_groups"]) {
    TESSEL_CHECK(link.IsMap()) << at(path, link) << "'between_groups' is a map {bw_gbs, latency_us}";
    only_known_keys(path, link, {"bw_gbs", "latency_us"}, "between_groups");
    if (link["bw_gbs"]) c.between_bw_gbs = profile_number(link["bw_gbs"], "between_groups.bw_gbs", path);
    if (link["latency_us"])
      c.between_latency_us = profile_number(link["latency_us"], "between_groups.latency_us", path);
  }
  return c;
}

}  // namespace tessel

// Mixed clusters: the cluster file and its errors; plans that use every group, balanced stages
// and shares, each runnable as its --set line says.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "parallel/planner/cluster_plan.h"

using namespace tessel;

namespace {

std::string write_cluster(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() / ("tessel-cluster-" + name + ".yaml")).string();
  std::ofstream(path) << text;
  return path;
}

Config llama_13b() {
  // A 13B LLaMA-style model whose 40 layers split unevenly over 12 stages.
  return parse_config(
      "model: {arch: llama, layers: 40, d_model: 5120, heads: 40, kv_heads: 40, ffn_dim: 13824, vocab_size: 32000, "
      "seq_len: 4096}\nbatch: {global: 96, micro: 1}\nprecision: {compute: bf16}\n",
      "13b.yaml");
}

// 16 H800s and 32 H20s.
Cluster h800_h20() {
  return load_cluster(write_cluster("mixed",
                                    "groups:\n  - {name: fast, hardware: h800, nodes: 2}\n"
                                    "  - {name: big, hardware: h20, nodes: 4}\n"));
}

}  // namespace

TEST_CASE("cluster files: groups of nodes, and clear errors", "[cpu][planner][errors]") {
  const Cluster c = load_cluster(write_cluster("ok",
                                               "groups:\n  - {name: fast, hardware: h800, nodes: 2}\n"
                                               "  - {hardware: h20, nodes: 4}\nbetween_groups: {bw_gbs: 25}\n"));
  REQUIRE(c.groups.size() == 2);
  CHECK(c.groups[0].name == "fast");
  CHECK(c.groups[1].name == "h20");  // the hardware's name when none is given
  CHECK(c.gpus() == 48);
  CHECK(c.between_bw_gbs == 25);
  CHECK(c.between_latency_us == 8);  // the groups' slowest inter-node latency when not given
  CHECK_THROWS_WITH(load_cluster(write_cluster("unknown", "groups:\n  - {hardware: b300, nodes: 2}\n")),
                    Catch::Contains("tessel-cluster-unknown.yaml:2: unknown hardware 'b300'; known: a100-80gb"));
  CHECK_THROWS_WITH(load_cluster(write_cluster("zero", "groups:\n  - {hardware: h800, nodes: 0}\n")),
                    Catch::Contains("tessel-cluster-zero.yaml:2: a group of 0 nodes"));
  CHECK_THROWS_WITH(load_cluster(write_cluster("half", "groups:\n  - {hardware: h800, nodes: 1.5}\n")),
                    Catch::Contains("a group of 1.5 nodes; expected a whole number of at least 1"));
  CHECK_THROWS_WITH(load_cluster(write_cluster("empty", "groups: []\n")), Catch::Contains("'groups' must list"));
  CHECK_THROWS_WITH(load_cluster(write_cluster("key", "groups:\n  - {hardware: h800, node: 2}\n")),
                    Catch::Contains("unknown key 'node' in a group; expected hardware, name, nodes"));
  CHECK_THROWS_WITH(load_cluster(write_cluster("twice",
                                               "groups:\n  - {hardware: h800, nodes: 1}\n"
                                               "  - {hardware: h800, nodes: 2}\n")),
                    Catch::Contains("two groups are named 'h800'"));
  CHECK_THROWS_WITH(load_cluster("/nonexistent/cluster.yaml"), Catch::Contains("cannot read the cluster file"));
}

TEST_CASE("a mixed cluster's plans use every group and beat each kind alone", "[cpu][planner]") {
  const Cluster cluster = h800_h20();
  const Config config = llama_13b();
  const ClusterPlan plan = plan_cluster(config, cluster, {});
  REQUIRE(plan.mixed.size() == 2);
  REQUIRE(plan.alone.size() == 2);
  REQUIRE(plan.as_slowest);
  const ClusterCandidate* best = plan.best();
  REQUIRE(best != nullptr);
  for (const ClusterCandidate& c : plan.alone) CHECK(best->estimate.time.total < c.estimate.time.total);
  CHECK(best->estimate.time.total < plan.as_slowest->estimate.time.total);
  for (const ClusterCandidate& m : plan.mixed) {
    CHECK(m.gpus == 48);
    // The --set line runs: the split adds up to the layers, the shares to the batch.
    const Config run = parse_config(to_yaml(config), "plan", m.set);
    const PlanLayout& L = m.estimate.layout;
    CHECK(run.parallel.tp * run.parallel.pp * run.parallel.dp == 48);
    if (m.strategy == "stages across groups") {
      CHECK(run.parallel.order == "tp-cp-dp-pp");
      const std::vector<int64_t>& counts = run.parallel.pipeline_split.counts;
      REQUIRE(counts.size() == static_cast<size_t>(L.pp));
      // Stages on the H800s (placed first or last) hold more layers than those on the H20s.
      const bool fast_first = m.placement.front().rfind("fast", 0) == 0;
      CHECK((fast_first ? counts.front() : counts.back()) > (fast_first ? counts.back() : counts.front()));
    } else {
      CHECK(m.strategy == "replicas per group");
      CHECK(run.parallel.order == "tp-cp-pp-dp");
      const std::vector<int64_t>& shares = run.batch.shares;
      REQUIRE(shares.size() == static_cast<size_t>(L.dp));
      // The H800 replicas come first and run more micro-batches than the H20 ones.
      CHECK(shares.front() > shares.back());
    }
  }
  // Against each kind alone, the gains are in the reasons.
  bool gain = false;
  for (const std::string& r : plan.reasons)
    gain = gain || r.find("x the throughput of the best plan on one kind") != std::string::npos;
  CHECK(gain);
}

TEST_CASE("balanced stages: a stage of the slow kind takes about as long as one of the fast", "[cpu][planner]") {
  const Cluster cluster = h800_h20();
  const Config config = llama_13b();
  const ClusterPlan plan = plan_cluster(config, cluster, {});
  const ClusterCandidate* stages = nullptr;
  for (const ClusterCandidate& m : plan.mixed)
    if (m.strategy == "stages across groups") stages = &m;
  REQUIRE(stages != nullptr);
  // The estimate's bubble is what the fill and drain cost: the other stages once each. With
  // balanced stages the slowest stage is within one layer's time of the others, so the bubble is
  // close to (pp - 1) stages of the slowest.
  const PlanEstimate& e = stages->estimate;
  const double steady = (e.time.compute + e.time.memory_bound + e.time.overhead + e.time.tp_comm);
  const double micro_batches = static_cast<double>(config.batch.global / (e.layout.dp * e.layout.micro));
  const double slowest_stage = steady / micro_batches;
  CHECK(e.time.pp_bubble > 0.75 * (e.layout.pp - 1) * slowest_stage);
  CHECK(e.time.pp_bubble <= (e.layout.pp - 1) * slowest_stage * 1.0001);
}

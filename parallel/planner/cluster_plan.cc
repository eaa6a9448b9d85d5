#include "parallel/planner/cluster_plan.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <queue>
#include <sstream>

#include "core/error.h"

namespace tessel {
namespace {

std::string list_of(const std::vector<int64_t>& values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? "," : "") + std::to_string(values[i]);
  return s + "]";
}

std::string ranks_of(int first, int count) {
  return count == 1 ? "rank " + std::to_string(first)
                    : "ranks " + std::to_string(first) + "-" + std::to_string(first + count - 1);
}

std::string group_label(const ClusterGroup& g) {
  return g.name + " (" + std::to_string(g.gpus()) + " x " + g.hw.name + ")";
}

// Layers per pipeline rank so that the ranks take equal time: rank r's micro-batch takes
// per_layer[r] a layer, plus `head` on the last. Each rank holds at least one layer. The
// smallest step is found by bisection on the slowest rank's time; ranks then give back layers,
// the slowest first, until they add up to `layers`. Empty when there are more ranks than layers.
std::vector<int64_t> balanced_split(const std::vector<double>& per_layer, double head, int64_t layers) {
  const size_t n = per_layer.size();
  if (static_cast<int64_t>(n) > layers) return {};
  auto counts_within = [&](double budget) {
    std::vector<int64_t> c(n);
    for (size_t r = 0; r < n; ++r) {
      const double room = budget - (r + 1 == n ? head : 0);
      c[r] = room < per_layer[r] ? 0 : static_cast<int64_t>(std::floor(room / per_layer[r]));
    }
    return c;
  };
  auto enough = [&](const std::vector<int64_t>& c) {
    int64_t sum = 0;
    for (int64_t x : c) {
      if (x < 1) return false;
      sum += x;
    }
    return sum >= layers;
  };
  double lo = 0, hi = head + static_cast<double>(layers) * *std::max_element(per_layer.begin(), per_layer.end());
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    (enough(counts_within(mid)) ? hi : lo) = mid;
  }
  std::vector<int64_t> c = counts_within(hi);
  int64_t sum = 0;
  for (int64_t x : c) sum += x;
  auto time_of = [&](size_t r) { return static_cast<double>(c[r]) * per_layer[r] + (r + 1 == n ? head : 0); };
  while (sum > layers) {
    size_t slowest = n;
    for (size_t r = 0; r < n; ++r)
      if (c[r] > 1 && (slowest == n || time_of(r) > time_of(slowest))) slowest = r;
    --c[slowest];
    --sum;
  }
  return c;
}

// Every data-parallel replica's pipeline across the groups, in `order`: each group holds whole
// stages (tp · dp GPUs each), the layers split so that the stages take equal time.
std::optional<ClusterCandidate> stages_across(const Config& config, const Cluster& cluster, const PlanLayout& L,
                                              const std::vector<size_t>& order, double margin,
                                              const Framework& framework) {
  const int per_stage = L.tp * L.dp;
  Placement place;
  std::vector<size_t> group_of_rank;
  for (size_t g : order) {
    const ClusterGroup& group = cluster.groups[g];
    if (group.gpus() % per_stage != 0) return std::nullopt;
    for (int k = 0; k < group.gpus() / per_stage; ++k) {
      if (!place.rank.empty())
        place.next.push_back(group_of_rank.back() == g ? stage_link(L, group.hw)
                                                       : Link{cluster.between_bw_gbs, cluster.between_latency_us});
      place.rank.push_back(&group.hw);
      group_of_rank.push_back(g);
    }
  }
  if (static_cast<int>(place.rank.size()) != L.pp) return std::nullopt;
  std::vector<double> per_layer;
  for (const HardwareProfile* hw : place.rank)
    per_layer.push_back(rank_micro_batch_seconds(config, L, *hw, 1, false, framework));
  const double head = rank_micro_batch_seconds(config, L, *place.rank.back(), 0, true, framework);
  const std::vector<int64_t> counts = balanced_split(per_layer, head, config.model.layers);
  if (counts.empty()) return std::nullopt;
  Config c = config;
  c.parallel.pp = L.pp;
  c.parallel.virtual_stages = 1;
  c.parallel.pipeline_split = LayerSplit{PipelineSplit::kEven, counts};
  ClusterCandidate out;
  out.estimate = estimate_placed(c, L, place, margin, framework);
  if (!out.estimate.fits) return std::nullopt;
  out.strategy = "stages across groups";
  out.gpus = cluster.gpus();
  out.set = layout_overrides(L);
  out.set.push_back("parallel.pipeline_split=" + list_of(counts));
  out.set.push_back("parallel.order=tp-cp-dp-pp");
  int stage = 0;
  for (size_t g : order) {
    const ClusterGroup& group = cluster.groups[g];
    const int stages = group.gpus() / per_stage;
    std::ostringstream line;
    line << group_label(group) << ": " << ranks_of(stage * per_stage, stages * per_stage) << ", stage"
         << (stages > 1 ? "s " + std::to_string(stage) + "-" + std::to_string(stage + stages - 1)
                        : " " + std::to_string(stage))
         << " with ";
    for (int s = stage; s < stage + stages; ++s) line << (s > stage ? ", " : "") << counts[static_cast<size_t>(s)];
    line << " layers";
    out.placement.push_back(line.str());
    stage += stages;
  }
  return out;
}

// Each data-parallel replica within one group; replicas run unequal numbers of micro-batches
// (batch.shares) so that they finish together. A replica's time on m micro-batches is linear in
// m (the steady state, the bubble and the transfers), so it is estimated at 1 and 2 and each
// micro-batch of the step goes to the replica that would finish it first.
std::optional<ClusterCandidate> replicas_per_group(const Config& config, const Cluster& cluster, const PlanLayout& L,
                                                   double margin, const Framework& framework) {
  const int per_replica = L.tp * L.pp;
  auto estimate_with = [&](const HardwareProfile& hw, int64_t m) {
    Config c = config;
    c.batch.global = m * L.micro * L.dp;
    c.batch.shares.clear();
    return estimate_layout(c, L, hw, margin, framework);
  };
  auto replica_time = [](const PlanEstimate& e) { return e.time.total - e.time.dp_exposed - e.time.optimizer; };
  struct Line {
    double fixed = 0, per_micro = 0;
  };
  std::vector<Line> line(cluster.groups.size());
  std::vector<size_t> group_of_replica;
  for (size_t g = 0; g < cluster.groups.size(); ++g) {
    const ClusterGroup& group = cluster.groups[g];
    if (group.gpus() % per_replica != 0) return std::nullopt;
    const double t1 = replica_time(estimate_with(group.hw, 1)), t2 = replica_time(estimate_with(group.hw, 2));
    line[g] = {2 * t1 - t2, t2 - t1};
    for (int k = 0; k < group.gpus() / per_replica; ++k) group_of_replica.push_back(g);
  }
  if (static_cast<int>(group_of_replica.size()) != L.dp) return std::nullopt;
  const int64_t slots = config.batch.global / L.micro;
  if (slots * L.micro != config.batch.global || slots < L.dp) return std::nullopt;
  std::vector<int64_t> shares(group_of_replica.size(), 1);
  auto finish = [&](size_t i, int64_t m) {
    const Line& l = line[group_of_replica[i]];
    return l.fixed + l.per_micro * static_cast<double>(m);
  };
  using Entry = std::pair<double, size_t>;  // finish time with one more micro-batch, replica
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> next;
  for (size_t i = 0; i < shares.size(); ++i) next.push({finish(i, 2), i});
  for (int64_t left = slots - L.dp; left > 0; --left) {
    const size_t i = next.top().second;
    next.pop();
    ++shares[i];
    next.push({finish(i, shares[i] + 1), i});
  }
  // The step: the replica finishing last, then the gradients reduced over every replica (the
  // ring crosses the link between groups), ZeRO's all-gather, and the slowest optimizer step.
  ClusterCandidate out;
  double slowest = -1, optimizer = 0, fastest_micro = line.front().per_micro;
  for (size_t g = 0; g < cluster.groups.size(); ++g) {
    int64_t most = 0;
    for (size_t i = 0; i < shares.size(); ++i)
      if (group_of_replica[i] == g) most = std::max(most, shares[i]);
    const PlanEstimate e = estimate_with(cluster.groups[g].hw, most);
    if (!e.fits) return std::nullopt;
    optimizer = std::max(optimizer, e.time.optimizer);
    fastest_micro = std::min(fastest_micro, line[g].per_micro);
    if (replica_time(e) > slowest) slowest = replica_time(e), out.estimate = e;
  }
  const double params = static_cast<double>(stage_parameters(config.model, L.tp, L.pp, L.virtual_stages));
  const double a = config.precision.compute == Precision::kFp32 ? 4 : 2;
  double reduce = all_reduce_seconds(params * 4, L.dp, cluster.between_bw_gbs, cluster.between_latency_us);
  if (L.zero == ZeroStage::k2) reduce /= 2;
  // Hidden behind the last micro-batch's backward: about two thirds of a micro-batch's time.
  const double hidden = config.parallel.overlap_grad_reduce ? 2.0 / 3.0 * fastest_micro : 0;
  const double gather = L.zero >= ZeroStage::k1
                            ? all_gather_seconds(params * a, L.dp, cluster.between_bw_gbs, cluster.between_latency_us)
                            : 0;
  PlanEstimate& e = out.estimate;
  e.time.dp_exposed = std::max(0.0, reduce - hidden) + gather;
  e.time.optimizer = optimizer;
  e.time.total = slowest + e.time.dp_exposed + e.time.optimizer;
  const double tokens = static_cast<double>(config.batch.global * config.model.seq_len);
  e.layout = L;
  e.tokens_per_s = tokens / e.time.total;
  e.tflops_per_gpu = model_flops_per_token(config.model) * tokens / e.time.total / cluster.gpus() / 1e12;
  double peak = 0;
  for (const ClusterGroup& g : cluster.groups)
    peak += g.hw.peak_tflops(config.precision.compute) * g.gpus() / cluster.gpus();
  e.mfu = e.tflops_per_gpu / peak;
  out.strategy = "replicas per group";
  out.gpus = cluster.gpus();
  out.set = layout_overrides(L);
  out.set.push_back("batch.shares=" + list_of(shares));
  out.set.push_back("parallel.order=tp-cp-pp-dp");
  size_t first = 0;
  for (size_t g = 0; g < cluster.groups.size(); ++g) {
    const ClusterGroup& group = cluster.groups[g];
    const int replicas = group.gpus() / per_replica;
    const std::vector<int64_t> mine(shares.begin() + static_cast<long>(first),
                                    shares.begin() + static_cast<long>(first) + replicas);
    const bool equal = std::all_of(mine.begin(), mine.end(), [&](int64_t n) { return n == mine.front(); });
    std::ostringstream text;
    text << group_label(group) << ": " << ranks_of(static_cast<int>(first) * per_replica, replicas * per_replica)
         << ", " << replicas << (replicas > 1 ? " replicas of " : " replica of ")
         << (equal ? std::to_string(mine.front()) : list_of(mine)) << " micro-batches"
         << (equal && replicas > 1 ? " each" : "");
    out.placement.push_back(text.str());
    first += static_cast<size_t>(replicas);
  }
  return out;
}

bool faster(const ClusterCandidate& x, const ClusterCandidate& y) {
  return x.estimate.time.total < y.estimate.time.total;
}

ClusterCandidate single_kind(const Plan& plan, const std::string& strategy, int gpus, const std::string& where) {
  ClusterCandidate c;
  c.strategy = strategy;
  c.gpus = gpus;
  c.estimate = plan.ranked.front();
  c.set = layout_overrides(c.estimate.layout);
  c.placement = {where};
  return c;
}

std::string describe(const ClusterCandidate& c) {
  std::ostringstream s;
  s << c.strategy << ", " << c.estimate.layout.describe() << ": " << std::lround(c.estimate.tokens_per_s)
    << " tokens/s, " << std::setprecision(3) << c.estimate.time.total << " s per step";
  return s.str();
}

}  // namespace

const ClusterCandidate* ClusterPlan::best() const {
  const ClusterCandidate* b = mixed.empty() ? nullptr : &mixed.front();
  for (const ClusterCandidate& c : alone)
    if (b == nullptr || faster(c, *b)) b = &c;
  if (as_slowest && (b == nullptr || faster(*as_slowest, *b))) b = &*as_slowest;
  return b;
}

ClusterPlan plan_cluster(const Config& config, const Cluster& cluster, const PlanConstraints& fixed, double margin,
                         const Framework& framework) {
  ClusterPlan plan;
  std::vector<std::string> why_not;
  // Mixed: every layout of the whole cluster's GPU count, placed both ways.
  std::vector<PlanLayout> layouts;
  try {
    PlanConstraints knobs = fixed;
    knobs.ep_searched = false;  // parallel.ep runs on the CPU backend only for now
    layouts = enumerate_layouts(config, cluster.gpus(), knobs, /*uneven_stages=*/true);
  } catch (const Error& e) {
    why_not.push_back(std::string("no layout of all ") + std::to_string(cluster.gpus()) + " GPUs: " + e.what());
  }
  std::vector<std::vector<size_t>> orders(1);
  for (size_t g = 0; g < cluster.groups.size(); ++g) orders[0].push_back(g);
  if (cluster.groups.size() > 1) orders.push_back(std::vector<size_t>(orders[0].rbegin(), orders[0].rend()));
  auto consider = [&](std::optional<ClusterCandidate> c) {
    ++plan.considered;
    if (!c) return;
    for (ClusterCandidate& m : plan.mixed)
      if (m.strategy == c->strategy) {
        if (faster(*c, m)) m = std::move(*c);
        return;
      }
    plan.mixed.push_back(std::move(*c));
  };
  for (const PlanLayout& L : layouts) {
    if (cluster.groups.size() > 1 && L.pp > 1 && L.virtual_stages == 1 && L.schedule == Schedule::k1F1B)
      for (const std::vector<size_t>& order : orders)
        consider(stages_across(config, cluster, L, order, margin, framework));
    // Interleaving needs every replica's micro-batches a multiple of pp, which uneven shares break.
    const bool even = config.model.layers % (L.pp * L.virtual_stages) == 0;
    if (cluster.groups.size() > 1 && L.dp > 1 && L.schedule != Schedule::kInterleaved && even)
      consider(replicas_per_group(config, cluster, L, margin, framework));
  }
  std::sort(plan.mixed.begin(), plan.mixed.end(), faster);
  // One kind: each group alone, and the whole cluster as its slowest kind.
  const ClusterGroup* slowest = &cluster.groups.front();
  for (const ClusterGroup& g : cluster.groups) {
    const Precision p = config.precision.compute;
    if (g.hw.peak_tflops(p) * g.hw.gemm_efficiency < slowest->hw.peak_tflops(p) * slowest->hw.gemm_efficiency)
      slowest = &g;
    try {
      const Plan alone = plan_layouts(config, g.gpus(), g.hw, fixed, margin, 1.0, framework);
      plan.alone.push_back(single_kind(alone, g.name + " alone", g.gpus(), group_label(g) + ": every rank"));
    } catch (const Error& e) {
      why_not.push_back(g.name + " alone: " + e.what());
    }
  }
  if (cluster.groups.size() > 1) {
    // The slowest kind's speed, and the least memory of any group's GPUs: a layout planned so
    // must fit on every GPU it runs on.
    HardwareProfile as_slowest = slowest->hw;
    for (const ClusterGroup& g : cluster.groups) as_slowest.memory_gb = std::min(as_slowest.memory_gb, g.hw.memory_gb);
    as_slowest.inter_node_bw_gbs = std::min(as_slowest.inter_node_bw_gbs, cluster.between_bw_gbs);
    as_slowest.inter_node_latency_us = std::max(as_slowest.inter_node_latency_us, cluster.between_latency_us);
    try {
      const Plan all = plan_layouts(config, cluster.gpus(), as_slowest, fixed, margin, 1.0, framework);
      plan.as_slowest =
          single_kind(all, "all as " + slowest->hw.name, cluster.gpus(),
                      "every GPU planned as " + slowest->hw.name + ", with the least memory of any group's");
    } catch (const Error& e) {
      why_not.push_back("all as " + slowest->hw.name + ": " + e.what());
    }
  }
  if (plan.mixed.empty() && cluster.groups.size() > 1)
    why_not.insert(why_not.begin(),
                   "using every group: no layout fits whose pipeline stages or data-parallel "
                   "replicas each lie whole within a group (" +
                       std::to_string(plan.considered) + " placements tried)");
  const ClusterCandidate* best = plan.best();
  if (best == nullptr) {
    std::string all;
    for (const std::string& w : why_not) all += "\n  " + w;
    TESSEL_FAIL() << "no plan fits the cluster of " << cluster.path << ":" << all
                  << "\nhint: more nodes, a smaller model or batch, or a profile with more memory";
  }
  // Reasons: the best, and its gain over the plans of one kind.
  plan.reasons.push_back("best: " + describe(*best));
  auto gain = [&](const ClusterCandidate& c, const std::string& what) {
    std::ostringstream s;
    s << std::setprecision(3) << best->estimate.tokens_per_s / c.estimate.tokens_per_s << "x the throughput of " << what
      << " (" << describe(c) << ")";
    plan.reasons.push_back(s.str());
  };
  const ClusterCandidate* best_alone = nullptr;
  for (const ClusterCandidate& c : plan.alone)
    if (best_alone == nullptr || faster(c, *best_alone)) best_alone = &c;
  if (best_alone != nullptr && best_alone != best) gain(*best_alone, "the best plan on one kind of GPU");
  if (plan.as_slowest && &*plan.as_slowest != best)
    gain(*plan.as_slowest, "the cluster planned as if every GPU were " + slowest->hw.name);
  for (const ClusterCandidate& m : plan.mixed) {
    if (&m == best) continue;
    std::ostringstream s;
    s << "at best " << describe(m) << ": " << std::lround(100 * (m.estimate.time.total / best->estimate.time.total - 1))
      << "% longer";
    plan.reasons.push_back(s.str());
  }
  for (const std::string& w : why_not) plan.reasons.push_back(w);
  return plan;
}

}  // namespace tessel

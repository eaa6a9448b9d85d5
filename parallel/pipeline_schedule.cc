#include "parallel/pipeline_schedule.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <tuple>

#include "core/error.h"

namespace tessel {
namespace {

// One transfer between stages as a link carries it: activations (kForward) into `stage`, or
// gradients (kBackward) out of it, of one micro-batch.
struct Transfer {
  int kind;
  int stage;
  int micro_batch;
  bool operator==(const Transfer& o) const {
    return kind == o.kind && stage == o.stage && micro_batch == o.micro_batch;
  }
};

// The first link whose sends and receives are posted in different orders, described; empty when
// every link matches. A link is (from rank, to rank, what it carries): the executor sends after
// an action and receives before one (parallel/pipeline_executor.h).
std::string transfer_order_mismatch(const std::vector<std::vector<PipeAction>>& schedule, int pp, int v) {
  const int stages = pp * v;
  std::map<std::tuple<int, int, int>, std::vector<Transfer>> sent, received;  // (from, to, kind)
  for (int r = 0; r < pp; ++r) {
    for (const PipeAction& a : schedule[static_cast<size_t>(r)]) {
      const int stage = a.chunk * pp + r;
      if (a.kind == PipeAction::kForward) {
        if (stage > 0) received[{(stage - 1) % pp, r, a.kind}].push_back({a.kind, stage, a.micro_batch});
        if (stage + 1 < stages) sent[{r, (stage + 1) % pp, a.kind}].push_back({a.kind, stage + 1, a.micro_batch});
      } else {
        if (stage + 1 < stages) received[{(stage + 1) % pp, r, a.kind}].push_back({a.kind, stage + 1, a.micro_batch});
        if (stage > 0) sent[{r, (stage - 1) % pp, a.kind}].push_back({a.kind, stage, a.micro_batch});
      }
    }
  }
  for (const auto& [link, sends] : sent) {
    const std::vector<Transfer>& recvs = received[link];
    const size_t n = std::min(sends.size(), recvs.size());
    size_t i = 0;
    while (i < n && sends[i] == recvs[i]) ++i;
    if (i == n && sends.size() == recvs.size()) continue;
    std::ostringstream os;
    const char* what = std::get<2>(link) == PipeAction::kForward ? "activations" : "gradients";
    os << "rank " << std::get<0>(link) << " sends " << what << " to rank " << std::get<1>(link) << " in another order "
       << "than that rank receives them: transfer " << i << " is ";
    if (i < sends.size()) {
      os << "micro-batch " << sends[i].micro_batch << " of stage " << sends[i].stage;
    } else {
      os << "nothing";
    }
    os << " on the sending side and ";
    if (i < recvs.size()) {
      os << "micro-batch " << recvs[i].micro_batch << " of stage " << recvs[i].stage;
    } else {
      os << "nothing";
    }
    os << " on the receiving side";
    return os.str();
  }
  return "";
}

// Megatron's interleaved order: the k-th forward (or backward) of a rank runs micro-batch
// (k / (pp·v))·pp + k % pp on chunk (k / pp) % v (backward: chunks in reverse).
PipeAction interleaved_action(int k, int pp, int v, bool forward) {
  PipeAction a;
  a.kind = forward ? PipeAction::kForward : PipeAction::kBackward;
  const int group = k / (pp * v);
  a.micro_batch = group * pp + k % pp;
  const int chunk = (k / pp) % v;
  a.chunk = forward ? chunk : v - 1 - chunk;
  return a;
}

}  // namespace

std::vector<std::vector<PipeAction>> build_pipeline_schedule(Schedule schedule, int pp, int v, int micro_batches) {
  TESSEL_CHECK(pp >= 1 && v >= 1 && micro_batches >= 1)
      << "pipeline schedule needs pp, virtual_stages and micro-batches of at least 1, got " << pp << ", " << v << ", "
      << micro_batches;
  const int m = micro_batches;
  std::vector<std::vector<PipeAction>> out(static_cast<size_t>(pp));
  if (schedule == Schedule::kGpipe || schedule == Schedule::k1F1B) {
    TESSEL_CHECK(v == 1) << "parallel.schedule '" << schedule
                         << "' runs one model chunk per rank; parallel.virtual_stages=" << v
                         << " needs schedule 'interleaved'";
    for (int r = 0; r < pp; ++r) {
      std::vector<PipeAction>& list = out[static_cast<size_t>(r)];
      const int warmup = schedule == Schedule::kGpipe ? m : std::min(pp - r - 1, m);
      int f = 0, b = 0;
      for (; f < warmup; ++f) list.push_back({PipeAction::kForward, f, 0});
      while (f < m) {  // steady state: one forward, one backward
        list.push_back({PipeAction::kForward, f++, 0});
        list.push_back({PipeAction::kBackward, b++, 0});
      }
      while (b < m) list.push_back({PipeAction::kBackward, b++, 0});
    }
    return out;
  }
  TESSEL_CHECK(schedule == Schedule::kInterleaved)
      << "unknown parallel.schedule " << static_cast<int>(schedule) << "; expected gpipe, 1f1b or interleaved";
  TESSEL_CHECK(m % pp == 0) << "parallel.schedule 'interleaved' needs the micro-batches per step (" << m
                            << ") to be a multiple of parallel.pp (" << pp << "); hint: make batch.global / (dp x "
                            << "batch.micro) a multiple of " << pp;
  const int total = m * v;
  for (int r = 0; r < pp; ++r) {
    std::vector<PipeAction>& list = out[static_cast<size_t>(r)];
    const int warmup = std::min(total, (pp - r - 1) * 2 + (v - 1) * pp);
    int f = 0, b = 0;
    for (; f < warmup; ++f) list.push_back(interleaved_action(f, pp, v, true));
    while (f < total) {
      list.push_back(interleaved_action(f++, pp, v, true));
      list.push_back(interleaved_action(b++, pp, v, false));
    }
    while (b < total) list.push_back(interleaved_action(b++, pp, v, false));
  }
  return out;
}

PipelineSimulation simulate_pipeline(const std::vector<std::vector<PipeAction>>& schedule, int pp, int v,
                                     double forward_cost, double backward_cost) {
  const int stages = pp * v;
  // When each (kind, micro-batch, stage) finished; absent: not yet.
  std::map<std::tuple<int, int, int>, double> done;
  auto finished = [&](int kind, int mb, int stage, double* at) {
    auto it = done.find({kind, mb, stage});
    if (it == done.end()) return false;
    *at = it->second;
    return true;
  };
  std::vector<size_t> next(static_cast<size_t>(pp), 0);
  std::vector<double> clock(static_cast<size_t>(pp), 0), busy(static_cast<size_t>(pp), 0);
  std::vector<int> alive(static_cast<size_t>(pp), 0);
  PipelineSimulation sim;
  sim.peak_alive.assign(static_cast<size_t>(pp), 0);
  for (bool progressed = true; progressed;) {
    progressed = false;
    for (int r = 0; r < pp; ++r) {
      const std::vector<PipeAction>& list = schedule[static_cast<size_t>(r)];
      while (next[static_cast<size_t>(r)] < list.size()) {
        const PipeAction& a = list[next[static_cast<size_t>(r)]];
        const int stage = a.chunk * pp + r;
        double ready = clock[static_cast<size_t>(r)], t = 0;
        if (a.kind == PipeAction::kForward) {
          if (stage > 0) {
            if (!finished(PipeAction::kForward, a.micro_batch, stage - 1, &t)) break;
            ready = std::max(ready, t);
          }
        } else {
          if (!finished(PipeAction::kForward, a.micro_batch, stage, &t)) break;
          if (stage + 1 < stages) {
            if (!finished(PipeAction::kBackward, a.micro_batch, stage + 1, &t)) break;
            ready = std::max(ready, t);
          }
        }
        const double cost = a.kind == PipeAction::kForward ? forward_cost : backward_cost;
        clock[static_cast<size_t>(r)] = ready + cost;
        busy[static_cast<size_t>(r)] += cost;
        done[{a.kind, a.micro_batch, stage}] = ready + cost;
        int& live = alive[static_cast<size_t>(r)];
        live += a.kind == PipeAction::kForward ? 1 : -1;
        sim.peak_alive[static_cast<size_t>(r)] = std::max(sim.peak_alive[static_cast<size_t>(r)], live);
        ++next[static_cast<size_t>(r)];
        progressed = true;
      }
    }
  }
  sim.complete = true;
  std::ostringstream stuck;
  for (int r = 0; r < pp; ++r) {
    const std::vector<PipeAction>& list = schedule[static_cast<size_t>(r)];
    if (next[static_cast<size_t>(r)] < list.size()) {
      sim.complete = false;
      const PipeAction& a = list[next[static_cast<size_t>(r)]];
      stuck << "rank " << r << " waits at " << (a.kind == PipeAction::kForward ? "forward" : "backward")
            << " of micro-batch " << a.micro_batch << " chunk " << a.chunk << "; ";
    }
    sim.makespan = std::max(sim.makespan, clock[static_cast<size_t>(r)]);
  }
  sim.stuck = stuck.str();
  sim.out_of_order = transfer_order_mismatch(schedule, pp, v);
  sim.transfers_in_order = sim.out_of_order.empty();
  double total_busy = 0;
  for (double b : busy) total_busy += b;
  if (sim.makespan > 0) sim.bubble_fraction = 1.0 - total_busy / (pp * sim.makespan);
  return sim;
}

std::vector<std::pair<int, int>> partition_layers(int layers, int pp, int v, const LayerSplit& split) {
  const int stages = pp * v;
  TESSEL_CHECK(stages >= 1 && layers >= stages)
      << "model.layers (" << layers << ") is fewer than the " << stages << " pipeline stages (parallel.pp " << pp
      << " x parallel.virtual_stages " << v << "); hint: every stage needs at least one layer";
  std::vector<std::pair<int, int>> out;
  if (!split.counts.empty()) {
    int64_t sum = 0;
    for (int64_t n : split.counts) {
      TESSEL_CHECK(n >= 1) << "parallel.pipeline_split: a stage of " << n << " layers; every stage needs one";
      sum += n;
    }
    TESSEL_CHECK(static_cast<int>(split.counts.size()) == stages && sum == layers)
        << "parallel.pipeline_split lists " << split.counts.size() << " stages of " << sum << " layers in all, for "
        << stages << " stages (parallel.pp " << pp << " x parallel.virtual_stages " << v << ") of model.layers "
        << layers;
    int first = 0;
    for (int64_t n : split.counts) {
      out.emplace_back(first, first + static_cast<int>(n));
      first += static_cast<int>(n);
    }
    return out;
  }
  if (split.kind == PipelineSplit::kEndsAsLayers && stages > 1) {
    TESSEL_CHECK((layers + 2) % stages == 0 && (layers + 2) / stages >= 2)
        << "parallel.pipeline_split 'ends_as_layers': model.layers + 2 (" << layers + 2 << ") must be divisible by "
        << "parallel.pp (" << pp << ") x parallel.virtual_stages (" << v << ") = " << stages
        << ", at least 2 per stage";
    const int per = (layers + 2) / stages;
    int first = 0;
    for (int s = 0; s < stages; ++s) {
      const int n = per - (s == 0 ? 1 : 0) - (s + 1 == stages ? 1 : 0);
      out.emplace_back(first, first + n);
      first += n;
    }
    return out;
  }
  TESSEL_CHECK(layers % stages == 0) << "model.layers (" << layers << ") must be divisible by parallel.pp (" << pp
                                     << ") x parallel.virtual_stages (" << v << ") = " << stages
                                     << " so that every stage holds the same number of layers";
  const int per = layers / stages;
  for (int s = 0; s < stages; ++s) out.emplace_back(s * per, (s + 1) * per);
  return out;
}

}  // namespace tessel

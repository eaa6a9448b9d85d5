#include "parallel/planner/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "core/error.h"

namespace tessel {
namespace {

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i <= n; ++i) {
    if (n % i == 0) d.push_back(i);
  }
  return d;
}

template <typename T>
bool allowed(const std::optional<T>& fixed, const T& value) {
  return !fixed || *fixed == value;
}

std::string gb(double bytes) {
  std::ostringstream s;
  s.precision(bytes >= 10e9 ? 0 : 1);
  s << std::fixed << bytes / 1e9 << " GB";
  return s.str();
}

std::string pct(double x) { return std::to_string(static_cast<int>(std::lround(100 * x))) + "%"; }

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g s", s);
  return buf;
}

// Times by `ratio`, rates by its inverse; memory and the bottleneck stay (all parts scale alike).
void scale_times(PlanEstimate& e, double ratio) {
  TimeBreakdown& t = e.time;
  for (double* x : {&t.compute, &t.memory_bound, &t.tp_comm, &t.ep_comm, &t.pp_bubble, &t.pp_comm, &t.dp_exposed,
                    &t.optimizer, &t.total}) {
    *x *= ratio;
  }
  e.tokens_per_s /= ratio;
  e.tflops_per_gpu /= ratio;
  e.mfu /= ratio;
}

}  // namespace

std::vector<PlanLayout> enumerate_layouts(const Config& config, int gpus, const PlanConstraints& fixed,
                                          bool uneven_stages) {
  const ModelConfig& m = config.model;
  TESSEL_CHECK(gpus >= 1) << "--gpus must be at least 1, got " << gpus;
  // Fixed knobs that cannot go together on this many GPUs.
  const int64_t fixed_product = int64_t{fixed.tp.value_or(1)} * fixed.pp.value_or(1) * fixed.dp.value_or(1);
  TESSEL_CHECK(gpus % fixed_product == 0 && (!(fixed.tp && fixed.pp && fixed.dp) || fixed_product == gpus))
      << "the fixed parallel.tp (" << (fixed.tp ? std::to_string(*fixed.tp) : "any") << ") x pp ("
      << (fixed.pp ? std::to_string(*fixed.pp) : "any") << ") x dp (" << (fixed.dp ? std::to_string(*fixed.dp) : "any")
      << ") cannot make --gpus " << gpus << "; hint: fix fewer of them, or make their product " << gpus;
  const bool dp_one = (fixed.dp && *fixed.dp == 1) || (fixed.tp && fixed.pp && *fixed.tp * *fixed.pp == gpus);
  TESSEL_CHECK(!(fixed.zero && *fixed.zero > ZeroStage::k0 && dp_one))
      << "parallel.zero=" << *fixed.zero << " shards over data-parallel ranks, but the fixed knobs leave dp = 1 on "
      << gpus << " GPUs; hint: drop parallel.zero or leave room for dp > 1";
  std::vector<PlanLayout> out;
  std::vector<std::string> why;  // what ruled out each tp, for the error
  for (int64_t tp : divisors(gpus)) {
    if (!allowed(fixed.tp, static_cast<int>(tp))) continue;
    const bool shared_kv = m.arch != Arch::kGpt2 && m.kv_heads < tp && tp % m.kv_heads == 0;
    if (m.heads % tp != 0 || (m.kv_heads % tp != 0 && !shared_kv) || m.ffn_dim % tp != 0 || m.vocab_size % tp != 0) {
      if (tp > 1) why.push_back("tp " + std::to_string(tp) + " does not divide heads, kv_heads, ffn_dim or vocab_size");
      continue;
    }
    for (int64_t pp : divisors(gpus / tp)) {
      if (!allowed(fixed.pp, static_cast<int>(pp))) continue;
      const int64_t dp = gpus / (tp * pp);
      if (!allowed(fixed.dp, static_cast<int>(dp))) continue;
      if (config.batch.global % dp != 0) {
        why.push_back("dp " + std::to_string(dp) + " does not divide batch.global");
        continue;
      }
      for (int64_t micro : divisors(config.batch.global / dp)) {
        if (!allowed(fixed.micro, micro) || (!fixed.micro && micro > 64)) continue;
        const int64_t mbs = config.batch.global / (dp * micro);
        std::vector<std::pair<Schedule, int>> schedules = {{Schedule::k1F1B, 1}};
        if (pp > 1) {
          schedules.push_back({Schedule::kGpipe, 1});
          // 2 and 4 virtual stages searched; any other count when the user fixes it.
          std::vector<int> counts = {2, 4};
          if (fixed.virtual_stages && *fixed.virtual_stages > 1 && *fixed.virtual_stages != 2 &&
              *fixed.virtual_stages != 4)
            counts = {*fixed.virtual_stages};
          for (int v : counts) {
            if (m.layers % (pp * v) == 0 && mbs % pp == 0) schedules.push_back({Schedule::kInterleaved, v});
          }
        }
        for (const auto& [schedule, v] : schedules) {
          // Cross-layer attention: every stage must start at a group's first layer.
          if (m.cla_share > 1 && (m.layers % (pp * v) != 0 || (m.layers / (pp * v)) % m.cla_share != 0)) {
            why.push_back("pp " + std::to_string(pp) + " x " + std::to_string(v) +
                          " stages split a group of model.cla_share layers");
            continue;
          }
          if (m.layers % (pp * v) != 0 && !(uneven_stages && v == 1 && pp <= m.layers)) {
            why.push_back("pp " + std::to_string(pp) + " does not divide model.layers");
            continue;
          }
          if (pp > 1 && !allowed(fixed.schedule, schedule)) continue;
          if (!allowed(fixed.virtual_stages, v)) continue;
          for (ZeroStage zero : {ZeroStage::k0, ZeroStage::k1, ZeroStage::k2}) {
            if ((dp == 1 && zero > ZeroStage::k0) || !allowed(fixed.zero, zero)) continue;
            for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
              if (!allowed(fixed.recompute, recompute)) continue;
              for (bool sp : {false, true}) {
                if ((sp && (tp == 1 || m.seq_len % tp != 0)) || !allowed(fixed.sequence_parallel, sp)) continue;
                // Expert parallelism: MoE models only, over divisors of dp that divide the experts.
                for (int64_t ep : m.moe.enabled() && fixed.ep_searched ? divisors(dp) : std::vector<int64_t>{1}) {
                  if (m.moe.enabled() && m.moe.experts % ep != 0) continue;
                  if (!allowed(fixed.ep, static_cast<int>(ep))) continue;
                  PlanLayout l;
                  l.tp = static_cast<int>(tp);
                  l.pp = static_cast<int>(pp);
                  l.dp = static_cast<int>(dp);
                  l.virtual_stages = v;
                  l.schedule = pp > 1 ? schedule : Schedule::k1F1B;
                  l.micro = micro;
                  l.zero = zero;
                  l.recompute = recompute;
                  l.sequence_parallel = sp;
                  l.ep = static_cast<int>(ep);
                  l.moe = m.moe.enabled();
                  out.push_back(l);
                }
              }
            }
          }
        }
      }
    }
  }
  if (out.empty()) {
    std::string reasons;
    std::sort(why.begin(), why.end());
    why.erase(std::unique(why.begin(), why.end()), why.end());
    for (size_t i = 0; i < why.size() && i < 6; ++i) reasons += (i ? "; " : "") + why[i];
    TESSEL_FAIL() << "no layout of " << gpus << " GPUs fits this model and batch (heads " << m.heads << ", kv_heads "
                  << m.kv_heads << ", layers " << m.layers << ", batch.global " << config.batch.global
                  << (reasons.empty() ? "" : "): " + reasons) << (reasons.empty() ? ")" : "")
                  << "; hint: a GPU count whose factors divide them, or fewer knobs fixed with --set";
  }
  return out;
}

Plan plan_layouts(const Config& config, int gpus, const HardwareProfile& hw, const PlanConstraints& fixed,
                  double margin, double time_scale, const Framework& framework) {
  TESSEL_CHECK(time_scale > 0 && std::isfinite(time_scale))
      << "plan_layouts: time_scale " << time_scale << ", expected a positive measured / predicted ratio";
  PlanConstraints knobs = fixed;
  knobs.ep_searched = fixed.ep_searched && hw.name == "cpu-local";  // parallel.ep: CPU backend only for now
  const std::vector<PlanLayout> layouts = enumerate_layouts(config, gpus, knobs);
  // Calibrated before anything is ranked or explained: one set of figures for all that follows.
  std::vector<PlanEstimate> all;
  for (const PlanLayout& l : layouts) {
    all.push_back(estimate_layout(config, l, hw, margin, framework));
    scale_times(all.back(), time_scale);
  }
  Plan plan;
  plan.time_scale = time_scale;
  plan.considered = static_cast<int>(all.size());
  plan.smallest_memory = std::min_element(all.begin(), all.end(), [](auto& a, auto& b) {
                           return a.memory.total() < b.memory.total();
                         })->memory.total();
  for (const PlanEstimate& e : all) {
    if (e.fits) plan.ranked.push_back(e);
  }
  const double cap = hw.memory_gb * 1e9 * (1 - margin);
  TESSEL_CHECK(!plan.ranked.empty())
      << "the model fits no layout of " << gpus << " x " << hw.name << " (" << hw.memory_gb << " GB each, "
      << pct(margin) << " kept free): the smallest needs " << gb(plan.smallest_memory) << " per GPU against " << gb(cap)
      << "; hint: more GPUs, or GPUs with more memory (recomputation, ZeRO and micro-batch sizes were "
      << "searched"
      << (fixed.tp || fixed.pp || fixed.dp || fixed.zero || fixed.recompute || fixed.micro
              ? ", within the knobs fixed with --set, which you could free)"
              : ")");
  std::stable_sort(plan.ranked.begin(), plan.ranked.end(),
                   [](const PlanEstimate& a, const PlanEstimate& b) { return a.tokens_per_s > b.tokens_per_s; });

  const PlanEstimate& best = plan.ranked.front();
  const TimeBreakdown& t = best.time;
  std::ostringstream why;
  why << "best: " << best.layout.describe() << ": " << std::lround(best.tokens_per_s) << " tokens/s, MFU "
      << pct(best.mfu) << "; of its " << secs(t.total) << " step, compute " << pct(t.compute / t.total)
      << ", TP communication " << pct(t.tp_comm / t.total) << ", EP all-to-all " << pct(t.ep_comm / t.total)
      << ", pipeline bubble " << pct(t.pp_bubble / t.total) << ", DP communication " << pct(t.dp_exposed / t.total)
      << "; " << gb(best.memory.total()) << " of " << gb(hw.memory_gb * 1e9) << " per GPU";
  plan.reasons.push_back(why.str());
  // Common alternatives: the best layout of each family, and why it loses.
  const int gpn = hw.gpus_per_node;
  const std::vector<std::pair<std::string, std::function<bool(const PlanLayout&)>>> families = {
      {"tensor parallelism across nodes (tp > " + std::to_string(gpn) + ")", [&](auto& l) { return l.tp > gpn; }},
      {"no pipeline (pp = 1)", [](auto& l) { return l.pp == 1; }},
      {"no tensor parallelism (tp = 1)", [](auto& l) { return l.tp == 1; }},
      {"plain data parallelism (tp = pp = 1)", [](auto& l) { return l.tp == 1 && l.pp == 1; }},
      {"no ZeRO (zero 0)", [](auto& l) { return l.zero == ZeroStage::k0 && l.dp > 1; }},
      {"no recomputation", [](auto& l) { return l.recompute == Recompute::kNone; }},
  };
  for (const auto& [name, member] : families) {
    if (member(best.layout)) continue;
    const PlanEstimate* fastest = nullptr;
    const PlanEstimate* smallest = nullptr;
    for (const PlanEstimate& e : all) {
      if (!member(e.layout)) continue;
      if (e.fits && (!fastest || e.tokens_per_s > fastest->tokens_per_s)) fastest = &e;
      if (!smallest || e.memory.total() < smallest->memory.total()) smallest = &e;
    }
    if (!smallest) continue;  // no such layout on this many GPUs
    std::ostringstream r;
    r << name << ": ";
    if (!fastest) {
      const MemoryBreakdown& mem = smallest->memory;
      r << "does not fit: at least " << gb(mem.total()) << " per GPU (" << smallest->layout.describe() << ": weights "
        << gb(mem.weights) << ", gradients " << gb(mem.gradients) << ", optimizer " << gb(mem.optimizer)
        << ", activations " << gb(mem.activations) << ") against " << gb(cap);
    } else {
      // The part that grew the most against the best layout is why it loses.
      const auto mine = fastest->time.parts(), theirs = best.time.parts();
      size_t grew = 0;
      for (size_t i = 1; i < mine.size(); ++i) {
        if (mine[i].second - theirs[i].second > mine[grew].second - theirs[grew].second) grew = i;
      }
      r << "at best " << fastest->layout.describe() << ", whose step takes " << secs(fastest->time.total) << " against "
        << secs(best.time.total) << " (" << pct(fastest->time.total / best.time.total - 1)
        << " longer): " << mine[grew].first << " takes " << secs(mine[grew].second) << " of it ("
        << secs(theirs[grew].second) << " in the best)";
      if (fastest->layout.tp > gpn) {
        r << "; its TP all-reduces run on the inter-node link (" << hw.inter_node_bw_gbs << " GB/s against "
          << hw.intra_node_bw_gbs << " GB/s within a node)";
      }
    }
    plan.reasons.push_back(r.str());
  }

  const double device = hw.memory_gb * 1e9;
  if (best.memory.total() > kMemoryWarningShare * device) {
    std::ostringstream w;
    w << "the best layout needs " << gb(best.memory.total()) << " per GPU, " << pct(best.memory.total() / device)
      << " of " << hw.name << "'s " << gb(device) << " (over " << pct(kMemoryWarningShare)
      << "): what the model does not count (allocator fragmentation, NCCL and CUDA context buffers) may not fit; "
      << "hint: plan with --margin " << 1 - kMemoryWarningShare << " or more, or on more GPUs";
    plan.warnings.push_back(w.str());
  }
  if (best.time.total < kShortestPredictableStep) {
    std::ostringstream w;
    w << "the best layout's predicted step, " << secs(best.time.total) << ", is under " << kShortestPredictableStep
      << " s, the shortest the cost model predicts: launch, thread start-up and framework overheads it leaves out "
      << "dominate such steps, so these times and their order are rough; hint: plan a larger batch.global or model, "
      << "or measure the layouts with tessel tune";
    plan.warnings.push_back(w.str());
  }
  return plan;
}

std::vector<std::string> layout_overrides(const PlanLayout& l) {
  std::vector<std::string> set = {"parallel.tp=" + std::to_string(l.tp),
                                  "parallel.pp=" + std::to_string(l.pp),
                                  "parallel.dp=" + std::to_string(l.dp),
                                  std::string("parallel.zero=") + name_of(l.zero),
                                  std::string("parallel.schedule=") + name_of(l.schedule),
                                  "parallel.virtual_stages=" + std::to_string(l.virtual_stages),
                                  std::string("parallel.recompute=") + name_of(l.recompute),
                                  std::string("parallel.sequence_parallel=") + (l.sequence_parallel ? "true" : "false"),
                                  "batch.micro=" + std::to_string(l.micro)};
  if (l.moe) set.push_back("parallel.ep=" + std::to_string(l.ep));
  return set;
}

bool is_layout_knob(const std::string& key) {
  for (const char* k :
       {"parallel.tp", "parallel.pp", "parallel.dp", "parallel.zero", "parallel.virtual_stages", "parallel.schedule",
        "parallel.recompute", "parallel.sequence_parallel", "batch.micro", "parallel.ep"}) {
    if (key == k) return true;
  }
  return false;
}

std::vector<std::string> other_overrides(const std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  for (const std::string& o : overrides) {
    if (!is_layout_knob(o.substr(0, o.find('=')))) out.push_back(o);
  }
  return out;
}

PlanConstraints fixed_knobs(const std::vector<std::string>& overrides, const Config& c) {
  PlanConstraints f;
  for (const std::string& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    if (key == "parallel.tp") f.tp = static_cast<int>(c.parallel.tp);
    if (key == "parallel.pp") f.pp = static_cast<int>(c.parallel.pp);
    if (key == "parallel.dp" && c.parallel.dp > 0) f.dp = static_cast<int>(c.parallel.dp);
    if (key == "parallel.zero") f.zero = c.parallel.zero;
    if (key == "parallel.virtual_stages") f.virtual_stages = static_cast<int>(c.parallel.virtual_stages);
    if (key == "parallel.schedule") f.schedule = c.parallel.schedule;
    if (key == "parallel.recompute") f.recompute = c.parallel.recompute;
    if (key == "parallel.sequence_parallel") f.sequence_parallel = c.parallel.sequence_parallel;
    if (key == "batch.micro") f.micro = c.batch.micro;
    if (key == "parallel.ep") f.ep = static_cast<int>(c.parallel.ep);
  }
  return f;
}

}  // namespace tessel

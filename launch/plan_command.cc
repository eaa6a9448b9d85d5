#include "launch/commands.h"
#include "launch/usage.h"

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/config/config.h"
#include "core/error.h"
#include "core/io/json.h"
#include "launch/cli_args.h"
#include "launch/launcher.h"
#include "parallel/planner/calibration.h"
#include "parallel/planner/cluster_plan.h"
#include "parallel/planner/planner.h"

namespace tessel {
namespace {

JsonValue candidate_json(const PlanEstimate& e) {
  const PlanLayout& l = e.layout;
  const MemoryBreakdown& m = e.memory;
  const TimeBreakdown& t = e.time;
  auto num = [](double x) { return JsonValue::number(x); };
  return JsonValue::object(
      {{"layout", JsonValue::object({{"tp", JsonValue::integer(l.tp)},
                                     {"pp", JsonValue::integer(l.pp)},
                                     {"dp", JsonValue::integer(l.dp)},
                                     {"micro", JsonValue::integer(l.micro)},
                                     {"schedule", JsonValue::string(name_of(l.schedule))},
                                     {"virtual_stages", JsonValue::integer(l.virtual_stages)},
                                     {"zero", JsonValue::integer(zero_stage(l.zero))},
                                     {"recompute", JsonValue::string(name_of(l.recompute))},
                                     {"sequence_parallel", JsonValue::boolean(l.sequence_parallel)},
                                     {"ep", JsonValue::integer(l.ep)}})},
       {"memory_gb_per_gpu", num(m.total() / 1e9)},
       {"memory_gb", JsonValue::object({{"weights", num(m.weights / 1e9)},
                                        {"gradients", num(m.gradients / 1e9)},
                                        {"optimizer", num(m.optimizer / 1e9)},
                                        {"activations", num(m.activations / 1e9)},
                                        {"buffers", num(m.buffers / 1e9)},
                                        {"workspace", num(m.workspace / 1e9)}})},
       {"step_time_s", num(t.total)},
       {"time_s", JsonValue::object({{"compute", num(t.compute)},
                                     {"memory_bound", num(t.memory_bound)},
                                     {"overhead", num(t.overhead)},
                                     {"tp_comm", num(t.tp_comm)},
                                     {"ep_comm", num(t.ep_comm)},
                                     {"pp_bubble", num(t.pp_bubble)},
                                     {"pp_comm", num(t.pp_comm)},
                                     {"dp_exposed", num(t.dp_exposed)},
                                     {"optimizer", num(t.optimizer)}})},
       {"bottleneck", JsonValue::string(t.bottleneck)},
       {"tokens_per_s", num(e.tokens_per_s)},
       {"tflops_per_gpu", num(e.tflops_per_gpu)},
       {"mfu", num(e.mfu)}});
}

JsonValue cluster_candidate_json(const ClusterCandidate& c) {
  JsonValue::Array set, placement;
  for (const std::string& o : c.set) set.push_back(JsonValue::string(o));
  for (const std::string& p : c.placement) placement.push_back(JsonValue::string(p));
  JsonValue::Object o = candidate_json(c.estimate).as_object();
  o.insert(o.begin(), {"strategy", JsonValue::string(c.strategy)});
  o.insert(o.begin() + 1, {"gpus", JsonValue::integer(c.gpus)});
  o.push_back({"placement", JsonValue::array(std::move(placement))});
  o.push_back({"set", JsonValue::array(std::move(set))});
  return JsonValue::object(std::move(o));
}

// tessel plan CONFIG --cluster FILE: the best plan for a cluster of node groups of different GPUs
// (parallel/planner/cluster_plan.h), against the best on each group alone and the cluster
// planned as its slowest kind. No calibration: a tessel tune record measures one kind.
int run_cluster_plan(const ParsedArgs& a, std::ostream& out) {
  const Config config = load_config(a.positional[0], a.overrides);
  const Cluster cluster = load_cluster(a.get("--cluster", ""));
  const Framework framework = a.has("--framework") ? load_framework(a.get("--framework", "")) : Framework{};
  const double margin = a.get_double("--margin", 0.1);
  const std::string format = a.get("--format", "table");
  TESSEL_CHECK(format == "table" || format == "json") << "--format must be table or json, got '" << format << "'";
  TESSEL_CHECK(margin >= 0 && margin < 1) << "--margin must be in [0, 1)";
  TESSEL_CHECK(!a.has("--top"))
      << "--top lists a ranking of one kind of GPU; --cluster prints the best of each kind of plan";
  const ClusterPlan plan = plan_cluster(config, cluster, fixed_knobs(a.overrides, config), margin, framework);
  const ClusterCandidate& best = *plan.best();
  std::vector<std::string> set = other_overrides(a.overrides);
  for (const std::string& o : best.set) set.push_back(o);
  std::vector<const ClusterCandidate*> rows;
  for (const ClusterCandidate& c : plan.mixed) rows.push_back(&c);
  for (const ClusterCandidate& c : plan.alone) rows.push_back(&c);
  if (plan.as_slowest) rows.push_back(&*plan.as_slowest);
  if (format == "json") {
    JsonValue::Array groups, candidates, reasons, set_json;
    for (const ClusterGroup& g : cluster.groups)
      groups.push_back(JsonValue::object({{"name", JsonValue::string(g.name)},
                                          {"hardware", JsonValue::string(g.hw.name)},
                                          {"nodes", JsonValue::integer(g.nodes)},
                                          {"gpus", JsonValue::integer(g.gpus())}}));
    for (const ClusterCandidate* c : rows) candidates.push_back(cluster_candidate_json(*c));
    for (const std::string& r : plan.reasons) reasons.push_back(JsonValue::string(r));
    for (const std::string& o : set) set_json.push_back(JsonValue::string(o));
    out << JsonValue::object({{"config", JsonValue::string(config.source)},
                              {"cluster", JsonValue::string(cluster.path)},
                              {"groups", JsonValue::array(std::move(groups))},
                              {"gpus", JsonValue::integer(cluster.gpus())},
                              {"framework", JsonValue::string(framework.name)},
                              {"precision", JsonValue::string(name_of(config.precision.compute))},
                              {"considered", JsonValue::integer(plan.considered)},
                              {"best", cluster_candidate_json(best)},
                              {"candidates", JsonValue::array(std::move(candidates))},
                              {"reasons", JsonValue::array(std::move(reasons))},
                              {"set", JsonValue::array(std::move(set_json))}})
               .dump()
        << "\n";
    return 0;
  }
  out << config.source << " on " << cluster.path << ":";
  for (const ClusterGroup& g : cluster.groups)
    out << (&g == &cluster.groups.front() ? " " : ", ") << g.nodes << (g.nodes == 1 ? " node of " : " nodes of ")
        << g.hw.name << " (" << g.name << ", " << g.gpus() << " GPUs)";
  out << "; " << config.precision.compute << ", batch " << config.batch.global << " x " << config.model.seq_len
      << " tokens, " << parameter_count(static_cast<double>(model_parameters(config.model))) << " parameters; "
      << plan.considered << " placements of every group considered\n\n";
  char line[320];
  std::snprintf(line, sizeof(line), "%-24s %5s  %-60s %8s %9s %11s  %s\n", "plan", "GPUs", "layout", "GB/GPU", "step s",
                "tokens/s", "bottleneck");
  out << line;
  for (const ClusterCandidate* c : rows) {
    const PlanEstimate& e = c->estimate;
    std::snprintf(line, sizeof(line), "%-24s %5d  %-60s %8.1f %9.3f %11.0f  %s%s\n", c->strategy.c_str(), c->gpus,
                  e.layout.describe().c_str(), e.memory.total() / 1e9, e.time.total, e.tokens_per_s,
                  e.time.bottleneck.c_str(), c == &best ? "  <- best" : "");
    out << line;
  }
  out << "\n";
  for (const std::string& r : plan.reasons) out << "- " << r << "\n";
  out << "\nplacement of the best (list the hosts in this order in the hostfile):\n";
  for (const std::string& p : best.placement) out << "  " << p << "\n";
  out << "\nthe best plan, for tessel launch: --set " << shell_join(set) << "\n";
  return 0;
}

}  // namespace

int run_plan_command(const std::vector<std::string>& args) { return run_plan_command(args, std::cout); }

int run_plan_command(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(
      args, "tessel plan", {"--gpus", "--hardware", "--cluster", "--framework", "--top", "--format", "--margin"});
  if (a.has("--cluster")) {
    TESSEL_CHECK(a.positional.size() == 1 && !a.has("--gpus") && !a.has("--hardware"))
        << "--cluster gives the GPUs and their hardware: it replaces --gpus and --hardware\n"
        << command_usage("plan");
    return run_cluster_plan(a, out);
  }
  TESSEL_CHECK(a.positional.size() == 1 && a.has("--gpus") && a.has("--hardware")) << command_usage("plan");
  const Config config = load_config(a.positional[0], a.overrides);
  const int gpus = static_cast<int>(a.get_int("--gpus", 0, 1, kMaxGpus));
  const int64_t top = a.get_int("--top", 10);
  const double margin = a.get_double("--margin", 0.1);
  const std::string format = a.get("--format", "table");
  TESSEL_CHECK(format == "table" || format == "json") << "--format must be table or json, got '" << format << "'";
  TESSEL_CHECK(top >= 1 && margin >= 0 && margin < 1) << "--top must be at least 1 and --margin in [0, 1)";
  const HardwareProfile hw = load_hardware(a.get("--hardware", ""));
  const Framework framework = a.has("--framework") ? load_framework(a.get("--framework", "")) : Framework{};
  // One calibrated path: the ratio goes into plan_layouts, so the table, the reasons, the
  // warnings and the JSON all read the same scaled estimates. Calibrations are of Tessel's own
  // runs (tessel tune): another framework's plan is not scaled by them.
  const ModelShape shape = ModelShape::of(config);
  Calibration calibration = read_calibration(calibration_file(hw.name), hw.name, shape);
  if (framework.name != Framework{}.name) {
    calibration = Calibration{};
    calibration.note = "no calibration: tessel tune's records measure Tessel, not " + framework.name;
  }
  const Plan plan =
      plan_layouts(config, gpus, hw, fixed_knobs(a.overrides, config), margin, calibration.ratio, framework);
  const size_t shown = std::min<size_t>(plan.ranked.size(), static_cast<size_t>(top));
  // The best layout as --set overrides for tessel train or tessel launch, after the plan's own
  // (model, batch) overrides: the run then trains the model planned, on the layout planned.
  std::vector<std::string> set = other_overrides(a.overrides);
  for (const std::string& o : layout_overrides(plan.ranked.front().layout)) set.push_back(o);
  if (format == "json") {
    JsonValue::Array candidates, reasons, warnings, set_json;
    for (size_t i = 0; i < shown; ++i) candidates.push_back(candidate_json(plan.ranked[i]));
    for (const std::string& r : plan.reasons) reasons.push_back(JsonValue::string(r));
    for (const std::string& w : plan.warnings) warnings.push_back(JsonValue::string(w));
    for (const std::string& o : set) set_json.push_back(JsonValue::string(o));
    out << JsonValue::object(
               {{"config", JsonValue::string(config.source)},
                {"gpus", JsonValue::integer(gpus)},
                {"hardware", JsonValue::string(hw.name)},
                {"framework", JsonValue::string(framework.name)},
                {"precision", JsonValue::string(name_of(config.precision.compute))},
                {"model", shape.to_json()},
                {"calibration",
                 JsonValue::object({{"used", JsonValue::boolean(calibration.used)},
                                    {"ratio", JsonValue::number(plan.time_scale)},
                                    {"runs", JsonValue::integer(calibration.runs)},
                                    {"model", calibration.used ? calibration.model.to_json() : JsonValue()},
                                    {"path", JsonValue::string(calibration.path)},
                                    {"note", JsonValue::string(calibration.note)}})},
                {"considered", JsonValue::integer(plan.considered)},
                {"fitting", JsonValue::integer(static_cast<int64_t>(plan.ranked.size()))},
                {"candidates", JsonValue::array(std::move(candidates))},
                {"reasons", JsonValue::array(std::move(reasons))},
                {"set", JsonValue::array(std::move(set_json))},
                {"warnings", JsonValue::array(std::move(warnings))}})
               .dump()
        << "\n";
    return 0;
  }
  out << config.source << " on " << gpus << " x " << hw.name
      << (framework.name != Framework{}.name ? " with " + framework.name : std::string()) << " ("
      << config.precision.compute << ", batch " << config.batch.global << " x " << config.model.seq_len << " tokens, "
      << parameter_count(static_cast<double>(shape.parameters)) << " parameters): " << plan.considered
      << " layouts considered, " << plan.ranked.size() << " fit\n";
  out << calibration.note << "\n\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%3s  %-64s %8s %9s %11s %9s %6s  %s\n", "#", "layout", "GB/GPU", "step s",
                "tokens/s", "TFLOP/s", "MFU", "bottleneck");
  out << line;
  for (size_t i = 0; i < shown; ++i) {
    const PlanEstimate& e = plan.ranked[i];
    std::snprintf(line, sizeof(line), "%3zu  %-64s %8.1f %9.3f %11.0f %9.3g %5.1f%%  %s\n", i + 1,
                  e.layout.describe().c_str(), e.memory.total() / 1e9, e.time.total, e.tokens_per_s, e.tflops_per_gpu,
                  100 * e.mfu, e.time.bottleneck.c_str());
    out << line;
  }
  out << "\n";
  for (const std::string& r : plan.reasons) out << "- " << r << "\n";
  out << "\nthe best layout, for tessel train or tessel launch: --set " << shell_join(set) << "\n";
  for (const std::string& w : plan.warnings) out << "warning: " << w << "\n";
  return 0;
}

}  // namespace tessel

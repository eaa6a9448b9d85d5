// `tessel plan CONFIG --gpus N --hardware NAME [--set key=value ...] [--top K]
//  [--format table|json] [--margin F]`: every valid layout of the config's model on N GPUs of a
// hardware profile (configs/hardware), ranked by predicted throughput, with the reasons
// (parallel/planner). A parallel.* key or batch.micro given with --set is held fixed and the
// rest is searched; with all of them fixed it evaluates exactly that layout.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace tessel {

struct Config;
struct PlanConstraints;

int run_plan_command(const std::vector<std::string>& args);
int run_plan_command(const std::vector<std::string>& args, std::ostream& out);
// Whether a config key is a knob the planner searches (tp, pp, dp, zero, virtual_stages,
// schedule, recompute, sequence_parallel under parallel.*, and batch.micro).
bool is_layout_knob(const std::string& key);
// The layout knobs among --set overrides, as the config holds them.
PlanConstraints fixed_knobs(const std::vector<std::string>& overrides, const Config& config);

}  // namespace tessel

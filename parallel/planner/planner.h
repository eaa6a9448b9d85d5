// The planner: every valid layout of a model on a number of GPUs, estimated (cost_model.h) and
// ranked by throughput, with the reasons the best win and common alternatives lose.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "parallel/planner/cost_model.h"

namespace tessel {

// Knobs held fixed (given with --set): the rest are searched.
struct PlanConstraints {
  std::optional<int> tp, pp, dp, virtual_stages;
  std::optional<ZeroStage> zero;
  std::optional<int64_t> micro;
  std::optional<Schedule> schedule;
  std::optional<Recompute> recompute;
  std::optional<bool> sequence_parallel;
};

// Whether a config key is a knob the planner searches (tp, pp, dp, zero, virtual_stages,
// schedule, recompute, sequence_parallel under parallel.*, and batch.micro).
bool is_layout_knob(const std::string& key);
// The layout knobs among --set overrides ("key=value"), as the config holds them: what a
// user fixed, which the planner then does not search.
PlanConstraints fixed_knobs(const std::vector<std::string>& overrides, const Config& config);

// Every layout on `gpus` GPUs that Tessel can run for config.model and batch.global: tp divides
// heads, key/value heads (or shares them), ffn_dim, vocab_size and (with sequence parallelism)
// seq_len; layers split over pp × virtual stages; batch.global over dp × micro; interleaving
// needs micro-batches a multiple of pp. Throws when there is none, saying why.
std::vector<PlanLayout> enumerate_layouts(const Config& config, int gpus, const PlanConstraints& fixed);

struct Plan {
  std::vector<PlanEstimate> ranked;  // layouts that fit, fastest first
  int considered = 0;                // valid layouts estimated, fitting or not
  double smallest_memory = 0;        // bytes per GPU of the layout that needs the least
  std::vector<std::string> reasons;  // why the best wins and common alternatives lose
};

// Estimates every layout and ranks those that fit. Throws when none fits, naming the smallest
// memory per GPU a layout would need.
Plan plan_layouts(const Config& config, int gpus, const HardwareProfile& hw, const PlanConstraints& fixed,
                  double margin = 0.1);

// Scales every estimate's times by `ratio` (measured / predicted, from tessel tune), and its
// throughput the other way; the ranking does not change.
void apply_calibration(Plan& plan, double ratio);

}  // namespace tessel

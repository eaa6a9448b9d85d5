// The planner: every valid layout of a model on a number of GPUs, estimated (cost_model.h),
// scaled by a calibration (calibration.h) and ranked by throughput, with the reasons the best
// wins and common alternatives lose, and warnings about the best. Every time and throughput a
// Plan holds is calibrated the same way, so whatever prints a Plan prints one set of figures.
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
  std::optional<int> ep;
  // Whether ep > 1 is searched for MoE models: parallel.ep runs on the CPU backend only for now,
  // so plans for GPUs (plan_layouts with another profile than cpu-local) keep ep 1.
  bool ep_searched = true;
};

// Whether a config key is a knob the planner searches (tp, pp, dp, ep, zero, virtual_stages,
// schedule, recompute, sequence_parallel under parallel.*, and batch.micro).
bool is_layout_knob(const std::string& key);
// The --set overrides that select `layout` in `tessel train` (or `tessel bench step`): every
// layout knob, so that they hold whatever the config file says ("parallel.tp=2", ...,
// "batch.micro=4"). fixed_knobs of them fixes exactly this layout.
std::vector<std::string> layout_overrides(const PlanLayout& layout);
// The --set overrides ("key=value") that are not layout knobs: the model, batch and run settings
// a plan was made for, which a run of its layout needs as well.
std::vector<std::string> other_overrides(const std::vector<std::string>& overrides);
// The layout knobs among --set overrides ("key=value"), as the config holds them: what a
// user fixed, which the planner then does not search.
PlanConstraints fixed_knobs(const std::vector<std::string>& overrides, const Config& config);

// Every layout on `gpus` GPUs that Tessel can run for config.model and batch.global: tp divides
// heads, key/value heads (or shares them), ffn_dim, vocab_size and (with sequence parallelism)
// seq_len; layers split over pp × virtual stages; batch.global over dp × micro; interleaving
// needs micro-batches a multiple of pp. uneven_stages: pp need only be at most the layers
// without interleaving (the caller splits them with parallel.pipeline_split). Throws when there
// is none, saying why.
std::vector<PlanLayout> enumerate_layouts(const Config& config, int gpus, const PlanConstraints& fixed,
                                          bool uneven_stages = false);

struct Plan {
  std::vector<PlanEstimate> ranked;   // layouts that fit, fastest first
  int considered = 0;                 // valid layouts estimated, fitting or not
  double smallest_memory = 0;         // bytes per GPU of the layout that needs the least
  double time_scale = 1;              // the calibration every time above was multiplied by
  std::vector<std::string> reasons;   // why the best wins and common alternatives lose
  std::vector<std::string> warnings;  // about the best: memory over kMemoryWarningShare, step too short
};

// Memory per GPU above this share of the device's is warned of: what the model does not count
// (allocator fragmentation, NCCL and CUDA context buffers) may no longer fit.
constexpr double kMemoryWarningShare = 0.9;

// Estimates every layout, multiplies every time by `time_scale` (measured / predicted, from a
// calibration; throughput, TFLOP/s and MFU go the other way), ranks those that fit, and explains
// and checks the best on those scaled figures. Throws when none fits, naming the smallest memory
// per GPU a layout would need. `framework`: whose implementation runs the layouts (Tessel's by
// default).
Plan plan_layouts(const Config& config, int gpus, const HardwareProfile& hw, const PlanConstraints& fixed,
                  double margin = 0.1, double time_scale = 1.0, const Framework& framework = {});

}  // namespace tessel

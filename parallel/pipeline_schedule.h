// Pipeline schedules as data: for each pipeline rank, the ordered list of forward and backward
// passes (micro-batch, model chunk) it runs in one optimizer step. Built by pure functions,
// checked by a simulation, then executed.
//
// Layout (Megatron's): the model is cut into pp · v stages of consecutive layers; rank r holds
// v model chunks, chunk c being stage c · pp + r (interleaved assignment). Stage s's forward
// of a micro-batch needs stage s-1's forward of it; its backward needs its own forward and
// stage s+1's backward. Activations travel forward and gradients backward between
// neighbouring stages; an executor receives before an action and sends (without waiting)
// after it.
//
//   gpipe        all forwards, then all backwards (v = 1): every micro-batch's activations are
//                alive at once.
//   1f1b         warm-up of pp - r - 1 forwards, then one forward and one backward in turn, then
//                the remaining backwards (v = 1): at most pp micro-batches alive on rank 0.
//   interleaved  1F1B over the v chunks of each rank (v >= 2; micro-batches a multiple of pp),
//                which divides the pipeline bubble by v.
// Pure functions; the result depends only on the arguments.
#pragma once

#include <string>
#include <vector>

#include "core/config/values.h"

namespace tessel {

struct PipeAction {
  enum Kind { kForward, kBackward };
  Kind kind = kForward;
  int micro_batch = 0;
  int chunk = 0;  // model chunk on this rank: stage chunk · pp + rank
  bool operator==(const PipeAction& o) const {
    return kind == o.kind && micro_batch == o.micro_batch && chunk == o.chunk;
  }
};

// One list of actions per pipeline rank. Throws with a clear message for impossible
// combinations (an unknown schedule, v > 1 without interleaved, micro-batches not a multiple
// of pp for interleaved).
std::vector<std::vector<PipeAction>> build_pipeline_schedule(Schedule schedule, int pp, int v, int micro_batches);

// What running a schedule does, simulated with every action taking `forward_cost` or
// `backward_cost` time units and waiting for the actions it depends on (sends never wait), and
// whether each link's transfers arrive in the order they are posted.
struct PipelineSimulation {
  bool complete = false;        // false: the schedule deadlocks (no rank could go on)
  std::string stuck;            // when it deadlocks: each rank's next action
  std::vector<int> peak_alive;  // per rank: most micro-batch chunks between forward and backward
  double makespan = 0;          // time until the last action ends
  double bubble_fraction = 0;   // idle share of the ranks' time: 1 - busy / (pp · makespan)
  // Whether every link (a rank to another, activations or gradients) receives its transfers in
  // the order they are sent, so that a transport without tags (NCCL matches a pair's sends and
  // receives by the order posted) pairs each with its own; out_of_order says where not.
  bool transfers_in_order = false;
  std::string out_of_order;
};
PipelineSimulation simulate_pipeline(const std::vector<std::vector<PipeAction>>& schedule, int pp, int v,
                                     double forward_cost = 1.0, double backward_cost = 2.0);

// The first and one-past-last layer of each of the pp · v stages, in stage order, as `split`
// says: evenly (they must divide; the message says how); ends_as_layers: the embedding (on the
// first stage) and the head (on the last) weigh as one layer each, so layers + 2 split evenly
// and the two end stages hold one layer fewer (Megatron's account-for-embedding and -loss
// split); or the listed counts, one per stage, adding up to `layers`.
std::vector<std::pair<int, int>> partition_layers(int layers, int pp, int v, const LayerSplit& split = {});

}  // namespace tessel

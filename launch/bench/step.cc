// `tessel bench step` (launch/bench/bench.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/config/config.h"
#include "core/error.h"
#include "core/io/json.h"
#include "core/measure.h"
#include "launch/bench/bench.h"
#include "launch/cli_args.h"
#include "parallel/topology.h"
#include "train/device_select.h"
#include "train/environment.h"
#include "train/rank_model.h"
#include "train/train_step.h"
#include "train/world.h"

namespace tessel {
namespace {

// The attention kernel a device step runs: run.attention, with auto resolved.
const char* attention_name(const Config& config) {
#ifdef TESSEL_HAVE_CUDA
  return attention_kernel(config.run.attention) == cuda::AttentionKernel::kFlash ? "flash" : "reference";
#else
  return name_of(config.run.attention);
#endif
}

}  // namespace

int run_bench_step(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel bench step", {"--steps", "--warmup"});
  TESSEL_CHECK(a.positional.size() == 1) << "usage: tessel bench step CONFIG [--set ...] [--steps N] [--warmup W]";
  Config config = load_config(a.positional[0], a.overrides);
  const int64_t steps = a.get_int("--steps", 5), warmup = a.get_int("--warmup", 2);
  TESSEL_CHECK(steps > 0 && warmup >= 0) << "--steps must be positive and --warmup non-negative";
  // Under mpirun or tessel launch the ranks form the config's tp x pp x dp grid; rank 0 reports.
  World world(config.parallel.timeout_s);
  return world.run_or_abort([&] {
    const Topology topology = Topology::from_config(config.parallel, world.comm().size(), world.comm().rank());
    const int threads = configure_threads(config.run.threads, world.identity().local_world_size);
    const int64_t T = config.model.seq_len;
    RankModel r = RankModel::build(config, world.comm(), topology);
    Transformer& model = *r.model;
    TrainStep& step = *r.step;
    const TrainStep::BatchFn fill = synthetic_batches(config);
    std::vector<double> times, waits, bubbles, exchanges;
    std::vector<double> stage_busy(static_cast<size_t>(r.pp->size()), 0.0);  // summed over timed steps
    StepResult result;
    for (int64_t i = 0; i < warmup + steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      result = step.run(i, fill);
      if (r.device) r.device->synchronize();  // the step's queued tail (AdamW) belongs to its time
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (i >= warmup) {
        times.push_back(dt);
        waits.push_back(result.comm_wait_s);
        exchanges.push_back(result.moe_exchange_s);
        if (r.pipeline) {
          // The pipeline bubble as Megatron counts it: the stages' idle time over their busy
          // time, idle = stages x the slowest stage's schedule time - busy.
          std::vector<double> busy(stage_busy.size(), 0.0);
          busy[static_cast<size_t>(r.pp->rank())] = r.pipeline->busy_s();
          r.pp->all_reduce_doubles(busy.data(), static_cast<int>(busy.size()), ReduceOp::kSum);
          double span = r.pipeline->step_s(), total = 0;
          r.pp->all_reduce_doubles(&span, 1, ReduceOp::kMax);
          for (size_t k = 0; k < busy.size(); ++k) {
            stage_busy[k] += busy[k];
            total += busy[k];
          }
          bubbles.push_back((r.pp->size() * span - total) / total);
        }
      }
    }
    const double step_s = median(times);
    if (world.comm().rank() != 0) return 0;
    const double tokens = static_cast<double>(config.batch.global * T);
    JsonLine line;
    line.add("bench", "step").add("config", config.source);
    if (r.device) {  // its name, the compute type and the allocator's peaks
      line.add("device", r.device->device().str())
          .add("device_name", r.device->describe())
          .add("precision", name_of(config.precision.compute))
          .add("attention", attention_name(config))
          .add("peak_allocated_mib", static_cast<double>(r.device->memory().peak_allocated) / (1 << 20), 1)
          .add("peak_reserved_mib", static_cast<double>(r.device->memory().peak_reserved) / (1 << 20), 1);
    } else {
      line.add("device", "cpu");
    }
    line.add("ranks", world.comm().size()).add("tp", r.tp->size()).add("ep", r.ep ? r.ep->size() : 1);
    if (r.pipeline) {
      const int pp = r.pp->size(), v = static_cast<int>(config.parallel.virtual_stages),
                m = r.pipeline->micro_batches();
      // Each stage's compute per step: unequal stages (the head on the last) add to the bubble.
      JsonValue::Array busy;
      for (double b : stage_busy)
        busy.push_back(JsonValue::number(std::round(b / static_cast<double>(steps) * 1e4) / 10));
      line.add("pp", pp)
          .add("schedule", name_of(config.parallel.schedule))
          .add("virtual_stages", v)
          .add("micro_batches", m)
          .add("bubble_measured", median(bubbles), 4)
          .add("bubble_simulated", r.schedule.bubble_fraction / (1 - r.schedule.bubble_fraction), 4)
          .add("bubble_theory", static_cast<double>(pp - 1) / (m * v), 4)
          .add("stage_busy_ms", JsonValue::array(std::move(busy)));
    }
    line.add("sequence_parallel", config.parallel.sequence_parallel && r.tp->size() > 1)
        .add("recompute", name_of(config.parallel.recompute))
        .add("activation_mib", static_cast<double>(model.activation_bytes()) / (1 << 20), 3)
        .add("threads", threads)
        .add("params", model.num_parameters())
        .add("batch", config.batch.global)
        .add("seq_len", T)
        .add("zero", zero_stage(step.data_parallel().zero()))
        .add("ms_per_step", step_s * 1000, 3)
        .add("comm_wait_ms", median(waits) * 1000, 3)
        .add("moe_exchange_ms", median(exchanges) * 1000, 3)
        .add("tokens_per_s", tokens / step_s, 1)
        .add("tflops", model.flops_per_token() * tokens / step_s / 1e12, 4)
        .add("loss", result.loss, 4)
        .add("flops_formula", "6N+6LTC");
    std::printf("%s\n", line.str().c_str());
    return 0;
  });
}

}  // namespace tessel

// `tessel train`: one rank's training run (launch/commands.h).
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/spdlog.h>

#include "core/config/config.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/model/param_specs.h"
#include "launch/cli_args.h"
#include "launch/commands.h"
#include "launch/usage.h"
#include "parallel/planner/cost_model.h"
#include "parallel/topology.h"
#include "train/environment.h"
#include "train/heartbeat.h"
#include "train/memory_check.h"
#include "train/run_limit.h"
#include "train/stop_signal.h"
#include "train/trainer.h"
#include "train/world.h"

namespace tessel {
namespace {

// The layer a parameter belongs to: "layer 3" for transformer.h.3.* / model.layers.3.*, else its
// own name (embeddings, the final norm, the head).
std::string parameter_group(const std::string& name) {
  for (const std::string marker : {".h.", ".layers."}) {
    const size_t at = name.find(marker);
    if (at == std::string::npos) continue;
    const size_t begin = at + marker.size(), end = name.find('.', begin);
    return "layer " + name.substr(begin, end - begin);
  }
  return name;
}

std::string mib(double bytes) { return fmt::format("{:.1f} MiB", bytes / (1 << 20)); }

// `tessel train --dry-run`: what the run would be, without allocating or reading anything.
void print_dry_run(const Config& config, int world_size, const std::string& hardware) {
  std::printf("config %s resolved:\n%s\n", config.source.c_str(), to_yaml(config).c_str());
  std::vector<std::pair<std::string, int64_t>> groups;
  int64_t total = 0;
  for (const ParamSpec& spec : transformer_param_specs(config.model)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    const std::string group = parameter_group(spec.name);
    if (groups.empty() || groups.back().first != group) groups.emplace_back(group, 0);
    groups.back().second += n;
    total += n;
  }
  std::printf("parameters by layer:\n");
  for (const auto& [group, n] : groups) std::printf("  %-32s %14lld\n", group.c_str(), static_cast<long long>(n));
  std::printf("  %-32s %14lld\n", "total", static_cast<long long>(total));

  const ParallelConfig& p = config.parallel;
  const PlanLayout layout =
      layout_of(config, static_cast<int>(p.dp > 0 ? p.dp : std::max<int64_t>(1, world_size / (p.tp * p.pp))));
  const HardwareProfile hw = load_hardware(hardware);
  const PlanEstimate e = estimate_layout(config, layout, hw);
  const MemoryBreakdown& m = e.memory;
  std::printf(
      "memory per rank (planner's estimate for %s on %s): %s = weights %s + gradients %s + optimizer %s + "
      "activations %s + buffers %s + workspace %s; %s the device's %.0f GB with 10%% kept free\n",
      layout.describe().c_str(), hw.name.c_str(), mib(m.total()).c_str(), mib(m.weights).c_str(),
      mib(m.gradients).c_str(), mib(m.optimizer).c_str(), mib(m.activations).c_str(), mib(m.buffers).c_str(),
      mib(m.workspace).c_str(), e.fits ? "fits in" : "DOES NOT FIT in", hw.memory_gb);
  std::printf("dry run: nothing was allocated or trained; drop --dry-run to train\n");
}

}  // namespace

int run_train_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel train", {"--hardware"}, {"--dry-run"});
  TESSEL_CHECK(!a.positional.empty()) << command_usage("train");
  TESSEL_CHECK(a.positional.size() == 1)
      << "tessel train takes one CONFIG, got '" << a.positional[0] << "' and '" << a.positional[1]
      << "'; hint: each override after --set is key=value, e.g. --set model.layers=4";
  const Config config = load_config(a.positional[0], a.overrides);
  if (a.has("--dry-run")) {
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    print_dry_run(config, size != nullptr ? std::atoi(size) : 1,
                  a.get("--hardware", config.run.device == RunDevice::kCuda ? "h200" : "cpu-local"));
    return 0;
  }
  World world(config.parallel.timeout_s);
  const Topology topology = Topology::from_config(config.parallel, world.comm().size(), world.comm().rank());
  // Rank 0 tells the story; the others speak up only for warnings and errors.
  init_logging(world.comm().rank(), world.distributed() ? topology.describe() : "",
               world.comm().rank() == 0 ? spdlog::level::info : spdlog::level::warn);
  spdlog::info("config {} resolved:\n{}", config.source, to_yaml(config));
  const int threads = configure_threads(config.run.threads, world.identity().local_world_size);
  if (world.distributed()) {
    spdlog::info("{} ranks ({} per node, {} threads each), grid {}", world.comm().size(),
                 world.identity().local_world_size, threads, topology.describe());
  }
  std::unique_ptr<Trainer> trainer;
  StopSignal stop;  // SIGTERM/SIGINT/SIGUSR1: checkpoint after the current step, then exit 0
  // Distributed, each rank beats for the launcher (train/heartbeat.h).
  std::unique_ptr<Heartbeat> heartbeat;
  if (world.distributed()) {
    const int rank = world.comm().rank();
    heartbeat =
        std::make_unique<Heartbeat>(config.run.out_dir, rank, world.placement().hosts[static_cast<size_t>(rank)]);
  }
  return world.run_or_abort(
      [&] {
        // Host memory backs every tensor of a CPU run; a GPU's own memory, shared by the ranks
        // that compute on it, backs a device run's.
        const RankIdentity& me = world.identity();
        check_memory_fits(config, topology.size(Axis::kDp), MemoryUse::kTraining,
                          config.run.device == RunDevice::kCuda ? device_memory_here(me.local_world_size, me.local_rank)
                                                                : host_memory(me.local_world_size));
        trainer = std::make_unique<Trainer>(config, world.comm(), topology, world.placement().hosts);
        if (heartbeat) heartbeat->set_step(trainer->state().step);  // a resumed run's first beats
        RunLimit limit(config.run);
        const TrainSummary s = trainer->run([&] {
          if (heartbeat) heartbeat->set_step(trainer->state().step);
          if (stop.requested()) return true;
          if (!limit.step_done()) return false;
          spdlog::info("{}", limit.reason());
          return true;
        });
        if (s.losses.empty()) return 0;  // nothing to train: run() said why
        spdlog::info("loss {:.4f} -> {:.4f} over steps {}..{}; checkpoint {}", s.first_loss, s.last_loss,
                     s.first_step + 1, s.last_step, s.checkpoint.empty() ? "(none)" : s.checkpoint);
        return 0;
      },
      [&] { return trainer ? trainer->flight_records() : world.comm().recorder().dump("  "); },
      [&](const std::string& error) {
        if (heartbeat) heartbeat->failed(error);
      });
}

}  // namespace tessel

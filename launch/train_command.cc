// `tessel train`: one rank's training run (launch/commands.h).
#include <memory>

#include <spdlog/spdlog.h>

#include "core/config/config.h"
#include "core/error.h"
#include "core/logging.h"
#include "launch/cli_args.h"
#include "launch/commands.h"
#include "parallel/topology.h"
#include "train/environment.h"
#include "train/stop_signal.h"
#include "train/trainer.h"
#include "train/world.h"

namespace tessel {

int run_train_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel train", {});
  TESSEL_CHECK(!a.positional.empty()) << "usage: tessel train CONFIG [--set key=value ...]";
  TESSEL_CHECK(a.positional.size() == 1)
      << "tessel train takes one CONFIG, got '" << a.positional[0] << "' and '" << a.positional[1]
      << "'; hint: each override after --set is key=value, e.g. --set model.layers=4";
  const Config config = load_config(a.positional[0], a.overrides);
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
  return world.run_or_abort(
      [&] {
        trainer = std::make_unique<Trainer>(config, world.comm(), topology);
        const TrainSummary s = trainer->run([&] { return stop.requested(); });
        if (s.losses.empty()) return 0;  // nothing to train: run() said why
        spdlog::info("loss {:.4f} -> {:.4f} over steps {}..{}; checkpoint {}", s.first_loss, s.last_loss,
                     s.first_step + 1, s.last_step, s.checkpoint.empty() ? "(none)" : s.checkpoint);
        return 0;
      },
      [&] { return trainer ? trainer->flight_records() : world.comm().recorder().dump("  "); });
}

}  // namespace tessel

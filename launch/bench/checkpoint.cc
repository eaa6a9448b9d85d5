#include "launch/bench/bench.h"

#include <cstdio>
#include <filesystem>

#include "core/io/json.h"
#include "core/io/temp_dir.h"
#include "core/measure.h"
#include "launch/cli_args.h"
#include "train/checkpointer.h"
#include "train/environment.h"
#include "train/trainer.h"
#include "train/world.h"

namespace tessel {
int run_bench_checkpoint(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel bench checkpoint", {"--saves", "--dir"});
  TESSEL_CHECK(a.positional.size() == 1)
      << "usage: tessel bench checkpoint CONFIG [--set key=value ...] [--saves N] [--dir DIR]";
  Config config = load_config(a.positional[0], a.overrides);
  const int64_t saves = a.get_int("--saves", 3);
  TESSEL_CHECK(saves > 0) << "--saves must be positive, got " << saves;
  World world(config.parallel.timeout_s);
  return world.run_or_abort([&] {
    Communicator& comm = world.comm();
    const bool writer = comm.rank() == 0;
    std::unique_ptr<TempDir> temp;
    std::string dir = a.get("--dir", "");
    if (dir.empty() && writer) {
      temp = std::make_unique<TempDir>("tessel_bench_ckpt");
      dir = temp->path();
    }
    broadcast_string(comm, &dir, 0);
    config.checkpoint.dir = dir;
    config.checkpoint.keep = 2;
    configure_threads(config.run.threads, world.identity().local_world_size);
    const Topology topology = Topology::from_config(config.parallel, comm.size(), comm.rank());
    RankModel r = RankModel::build(config, comm, topology);
    const TrainStep::BatchFn fill = synthetic_batches(config);
    int64_t step = 0;
    TrainingState state;
    auto train_step = [&] {
      const auto t0 = SteadyClock::now();
      r.step->run(step++, fill);
      comm.barrier();
      state.step = step;
      state.optimizer_steps = r.step->optimizer_steps();
      state.consumed_samples = static_cast<uint64_t>(step * config.batch.global);
      return seconds_since(t0);
    };
    for (int i = 0; i < 2; ++i) train_step();  // moments are no longer zero

    // Synchronous saves, then loads of the last one.
    config.checkpoint.async = false;
    std::vector<double> save_s, load_s;
    uint64_t bytes = 0;
    std::string last;
    {
      Checkpointer sync(config, comm, r);
      for (int64_t i = 0; i < saves; ++i) {
        train_step();
        comm.barrier();
        const auto t0 = SteadyClock::now();
        last = sync.save(state);
        save_s.push_back(seconds_since(t0));
        bytes = sync.last_save().bytes;
      }
      for (int64_t i = 0; i < saves; ++i) {
        comm.barrier();
        const auto t0 = SteadyClock::now();
        sync.load(last);
        comm.barrier();
        load_s.push_back(seconds_since(t0));
      }
    }
    // Asynchronous saves: the copy the step loop waits for, then steps while the file is written,
    // against steps with no save in flight.
    config.checkpoint.async = true;
    std::vector<double> quiet, during, snapshot, write;
    {
      Checkpointer async(config, comm, r);
      for (int64_t i = 0; i < saves; ++i) {
        for (int k = 0; k < 3; ++k) quiet.push_back(train_step());
        comm.barrier();
        const auto t0 = SteadyClock::now();
        async.save(state);
        snapshot.push_back(seconds_since(t0));
        for (int k = 0; k < 200; ++k) {
          during.push_back(train_step());
          async.poll();
          if (async.last_save().write_s > 0) break;  // published
        }
        async.wait();
        write.push_back(async.last_save().write_s);
      }
    }
    double load_max = median(load_s);
    comm.all_reduce_doubles(&load_max, 1, ReduceOp::kMax);
    if (!writer) return 0;
    const double gb = static_cast<double>(bytes) / 1e9;
    const double stall = median(snapshot) + (median(during) - median(quiet)) * static_cast<double>(during.size()) /
                                                static_cast<double>(saves);
    std::printf("%s\n",
                JsonLine()
                    .add("bench", "checkpoint")
                    .add("config", config.source)
                    .add("ranks", comm.size())
                    .add("layout", r.layout().describe())
                    .add("gb", gb, 4)
                    .add("save_sync_s", median(save_s), 4)
                    .add("save_sync_gbs", gb / median(save_s), 3)
                    .add("load_s", load_max, 4)
                    .add("load_gbs", gb / load_max, 3)
                    .add("async_snapshot_s", median(snapshot), 4)
                    .add("async_write_s_rank0", median(write), 4)
                    .add("steps_during_async_write", static_cast<double>(during.size()) / static_cast<double>(saves), 1)
                    .add("step_s", median(quiet), 4)
                    .add("step_s_during_async_write", median(during), 4)
                    .add("async_stall_s_per_save", stall, 4)
                    .add("dir", dir)
                    .str()
                    .c_str());
    std::fflush(stdout);
    return 0;
  });
}

}  // namespace tessel

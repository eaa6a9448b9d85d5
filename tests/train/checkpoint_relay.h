// A checkpoint relay between a device run and a CPU run, for the device tests: 4 steps of `c`
// straight on the CPU (the reference), against 2 on the emulated device then saved, 1 on the
// CPU resumed from that and saved, and the last on a device resumed from that. Checkpoints go
// to c.checkpoint.dir; each RankModel is this rank of `topology` over `world` (collective).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/core/emulated_device.h"
#include "train/checkpointer.h"
#include "train/rank_model.h"
#include "train/train_step.h"

namespace tessel {

// (the reference's 4 losses, the relay's 4 losses)
inline std::pair<std::vector<double>, std::vector<double>> checkpoint_relay(const Config& c, Communicator& world,
                                                                            const Topology& topology) {
  const TrainStep::BatchFn batches = synthetic_batches(c);
  auto run = [&](RankModel& r, int64_t from, int64_t to) {
    std::vector<double> losses;
    for (int64_t s = from; s < to; ++s) losses.push_back(r.step->run(s, batches).loss);
    return losses;
  };
  auto save = [&](RankModel& r, int64_t step) {
    Checkpointer ck(c, world, r);
    TrainingState state;
    state.step = step;
    state.optimizer_steps = r.step->optimizer_steps();
    ck.save(state);
    ck.wait();
  };
  auto load = [&](RankModel& r, int64_t step) {
    Checkpointer ck(c, world, r);
    ck.load(c.checkpoint.dir + "/step_0000000" + std::to_string(step));
  };
  RankModel straight = RankModel::build(c, world, topology, nullptr);
  const std::vector<double> want = run(straight, 0, 4);
  RankModel dev = RankModel::build(c, world, topology, std::make_unique<testing::EmulatedDevice>());
  std::vector<double> got = run(dev, 0, 2);
  save(dev, 2);
  RankModel cpu = RankModel::build(c, world, topology, nullptr);
  load(cpu, 2);
  for (double l : run(cpu, 2, 3)) got.push_back(l);
  save(cpu, 3);
  RankModel dev2 = RankModel::build(c, world, topology, std::make_unique<testing::EmulatedDevice>());
  load(dev2, 3);
  for (double l : run(dev2, 3, 4)) got.push_back(l);
  return {want, got};
}

}  // namespace tessel

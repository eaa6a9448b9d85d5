// A Trainer for one process: its own group of one and a 1×1×1 grid.
#pragma once

#include "parallel/comm/single_communicator.h"
#include "train/trainer.h"

namespace tessel {

struct LocalWorld {
  SingleCommunicator comm;
};

// LocalWorld comes first among the bases, so the communicator exists before the Trainer.
class LocalTrainer : private LocalWorld, public Trainer {
 public:
  explicit LocalTrainer(const Config& config) : LocalWorld(), Trainer(config, comm, Topology(GridShape{}, 0)) {}
};

}  // namespace tessel

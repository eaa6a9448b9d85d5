// Publishing a save: once every rank's file is in the step directory being written, its
// manifest is written and the directory published (core/checkpoint/directory.h); and a whole
// save by one process, for tools and tests. The ranks' coordination is train/checkpointer.h's.
#pragma once

#include <cstdint>
#include <string>

#include "core/checkpoint/format.h"
#include "core/model/parameters.h"

namespace tessel {

// After every rank's file is in `tmp_dir` (from prepare_checkpoint_dir): writes the manifest
// and publishes the directory as <root>/step_<meta.state.step>, updates `latest` and keeps the
// newest `keep` (0: all). Returns the step directory.
std::string publish_checkpoint(const std::string& root, const std::string& tmp_dir, const CheckpointMeta& meta,
                               int64_t keep);

// One process saving a whole store (and moments laid out like it, when given): the three steps
// above for a single rank.
struct CheckpointData {
  const ParameterStore* params = nullptr;
  const Tensor* adam_m = nullptr;  // may be null (weights-only checkpoint)
  const Tensor* adam_v = nullptr;
  TrainingState state;
  std::string config_yaml;
};
std::string save_checkpoint(const std::string& root, const CheckpointData& data, int64_t keep);

}  // namespace tessel

// Single-process checkpoints: save and exactly resume a run (weights, AdamW moments, step and
// data counters, guard state, the resolved config).
//
// On disk: <root>/step_NNNNNNNN/state.safetensors holding every parameter under its global
// name, the AdamW moments as "optim.exp_avg.<name>" / "optim.exp_avg_sq.<name>", and the
// training state, the resolved config YAML and each tensor's crc32c in the safetensors
// metadata; <root>/latest names the newest complete step directory. Saving writes into
// step_N.tmp/, fsyncs, renames, then replaces `latest` atomically, so a crash never leaves a
// half checkpoint that looks complete.
// This interface is all the trainer sees; the distributed, resharding format replaces what is
// behind it. Not thread-safe; one writer per root directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model/parameters.h"

namespace tessel {

constexpr int kCheckpointFormatVersion = 2;  // 2: per-tensor crc32c in the metadata

struct TrainingState {
  int64_t step = 0;               // steps completed
  uint64_t consumed_samples = 0;  // global data counter: the next step reads from here
  int64_t optimizer_steps = 0;    // AdamW updates applied (bias-correction t)
  int64_t skipped_total = 0;      // non-finite steps skipped so far
  int64_t skipped_streak = 0;     // consecutive skipped steps at save time
};

struct CheckpointData {
  const ParameterStore* params = nullptr;
  const Tensor* adam_m = nullptr;  // may be null (weights-only checkpoint)
  const Tensor* adam_v = nullptr;
  TrainingState state;
  std::string config_yaml;
};

// Writes <root>/step_<state.step>/ and updates <root>/latest; keeps the newest `keep` (0: all).
// Returns the step directory.
std::string save_checkpoint(const std::string& root, const CheckpointData& data, int64_t keep);

// A step directory, or a root whose `latest` (or newest step_*) is taken. Throws when there is
// none, naming what was looked for.
std::string resolve_checkpoint(const std::string& path);
// The newest complete checkpoint under root, or "" when there is none.
std::string latest_checkpoint(const std::string& root);
// Every complete checkpoint under root, oldest first by step number.
std::vector<std::string> complete_checkpoints(const std::string& root);

struct CheckpointInfo {
  std::string path;  // the step directory
  TrainingState state;
  std::string config_yaml;
};
CheckpointInfo read_checkpoint_info(const std::string& step_dir);

// Loads weights (and moments, when adam_m/adam_v are given) into buffers laid out like
// `params`. Every parameter must be present with the same shape (a checkpoint from another
// model shape gives an error naming the tensor and both shapes), and every tensor's bytes must
// match the crc32c recorded when it was saved (a damaged file names the tensor).
CheckpointInfo load_checkpoint(const std::string& step_dir, ParameterStore& params,
                               Tensor* adam_m, Tensor* adam_v);

}  // namespace tessel

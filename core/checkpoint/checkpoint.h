// Checkpoints: a run's weights, AdamW moments and counters, saved by any layout of ranks and
// loaded by any other (docs/checkpoints.md).
//
// On disk, <root>/step_NNNNNNNN/ holds one safetensors file per rank that holds state
// (rank_NNNNN.safetensors: its pieces of the global tensors, each a box of the tensor and a
// range of the box's elements, see core/checkpoint/region.h) and manifest.pb (protobuf,
// core/checkpoint/manifest.proto): format version, step and counters, the resolved config,
// the layout, and for every piece its global tensor, region, file, byte range and crc32c.
// <root>/latest names the newest complete step directory.
//
// Saving: every rank writes its file into step_N.tmp/ (write_rank_checkpoint), then one rank
// writes the manifest last and publishes the directory (publish_checkpoint: fsync, rename to
// step_N/, replace `latest` by write-and-rename, drop all but the newest `keep`). A directory
// without a manifest is never taken for a checkpoint, so a crash at any moment leaves the
// previous checkpoints as they were.
//
// Loading (CheckpointReader): the manifest is verified (its own checksum, format version,
// every tensor covered exactly by its pieces, every file present with its recorded size); each
// rank then reads only the pieces that overlap its own shard of each parameter, checking each
// piece's crc32c, so a damaged checkpoint gives an error naming the file and the tensor. No
// communication here: the trainer coordinates the ranks. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/model/parameters.h"

namespace tessel {

constexpr int kCheckpointFormatVersion = 3;  // 3: manifest and per-rank files with regions

struct TrainingState {
  int64_t step = 0;               // steps completed
  uint64_t consumed_samples = 0;  // global data counter: the next step reads from here
  int64_t optimizer_steps = 0;    // AdamW updates applied (bias-correction t)
  int64_t skipped_total = 0;      // non-finite steps skipped so far
  int64_t skipped_streak = 0;     // consecutive skipped steps at save time
  double loss_scale = 1.0;        // fp16's loss scale (1 without loss scaling); a save takes
  int64_t loss_scale_good_steps = 0;  // both from the train step's scaler
};

struct CheckpointLayout {
  int tp = 1, pp = 1, dp = 1, zero = 0, virtual_stages = 1, world_size = 1;
  std::string schedule = "1f1b";
  std::string describe() const;  // "tp 2 x pp 2 x dp 2, zero 1"
};

// What the manifest records besides the tensors.
struct CheckpointMeta {
  TrainingState state;
  std::string config_yaml;
  CheckpointLayout layout;
  uint64_t seed = 0;
  bool has_optimizer = true;
};

// The tensor names of the AdamW moments of parameter `name`.
std::string exp_avg_name(const std::string& name);     // "optim.exp_avg.<name>"
std::string exp_avg_sq_name(const std::string& name);  // "optim.exp_avg_sq.<name>"

// One rank's contribution: values laid out like `params` (the rank's tensor-parallel shard of
// its pipeline stage's parameters). Ranks that hold the same values (data-parallel replicas,
// replicated parameters, a tied embedding's copy) must leave them to one of them.
struct RankCheckpoint {
  const ParameterStore* params = nullptr;
  std::vector<bool> write_params;  // per entry of params: write its weights
  // AdamW moments of elements [begin, end) of entry `entry`'s local tensor: m and v are views
  // of (end - begin) values.
  struct StateSegment {
    size_t entry = 0;
    int64_t begin = 0, end = 0;
    Tensor m, v;
  };
  std::vector<StateSegment> state;
};

// A fresh, empty <root>/step_N.tmp/ (a stale one from an interrupted save is removed).
std::string prepare_checkpoint_dir(const std::string& root, int64_t step);

// A rank's pieces, ready to be written. With `copy` (an asynchronous save) they are copied out
// of the live buffers: a snapshot, so training may go on changing them while write() puts the
// copy on disk, possibly on another thread. Without, a piece that is one contiguous run of a
// buffer is written straight from it (the buffers must not change until write() returns), so a
// synchronous save needs little memory beyond the model's.
class RankCheckpointFile {
 public:
  explicit RankCheckpointFile(const RankCheckpoint& part, bool copy = true);
  ~RankCheckpointFile();
  uint64_t payload_bytes() const { return bytes_; }  // the pieces' bytes
  // Writes <dir>/rank_<rank>.safetensors (nothing when the rank has no piece); returns the
  // file's size. Thread-compatible: one call at a time.
  uint64_t write(const std::string& dir, int rank) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_ = 0;
};
// RankCheckpointFile(part).write(dir, rank).
uint64_t write_rank_checkpoint(const std::string& dir, int rank, const RankCheckpoint& part);
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

// A step directory, or a root whose `latest` (or newest step_*) is taken. Throws when there is
// none, naming what was looked for.
std::string resolve_checkpoint(const std::string& path);
// The newest complete checkpoint under root, or "" when there is none.
std::string latest_checkpoint(const std::string& root);
// The step directory name <root>/latest holds, whether or not it is complete; "" without one.
std::string latest_named(const std::string& root);
// Every complete checkpoint under root (a step_N directory with a manifest), oldest first.
std::vector<std::string> complete_checkpoints(const std::string& root);

struct CheckpointInfo {
  std::string path;  // the step directory
  TrainingState state;
  std::string config_yaml;
  CheckpointLayout layout;
  uint64_t seed = 0;
  bool has_optimizer = false;
};

struct CheckpointTensorInfo {
  std::string name;
  Shape shape;
  std::string dtype;
  int64_t pieces = 0;
  uint64_t bytes = 0;
};

class CheckpointReader {
 public:
  // Reads and verifies the manifest of a step directory; throws naming what is wrong.
  explicit CheckpointReader(const std::string& step_dir);
  ~CheckpointReader();
  const CheckpointInfo& info() const { return info_; }
  std::vector<CheckpointTensorInfo> tensors() const;
  std::vector<std::pair<std::string, uint64_t>> files() const;  // name, bytes

  // Every parameter of `specs` (the whole model's) is in the checkpoint with the same shape, and
  // the checkpoint holds no other parameter; the message names the tensor and both shapes.
  void check_model(const std::vector<ParamSpec>& specs) const;
  // values := tensor `prefix + name` of every parameter of `store` (its local shard), from the
  // pieces that overlap it, each verified by its checksum. prefix: "" for weights,
  // "optim.exp_avg." and "optim.exp_avg_sq." for the moments.
  void read(const ParameterStore& store, const std::string& prefix, const Tensor& values) const;
  // Reads every piece of every file and checks its checksum; returns the bytes checked.
  uint64_t verify_all() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  CheckpointInfo info_;
};

CheckpointInfo read_checkpoint_info(const std::string& step_dir);
// The config a checkpoint was trained with, parsed from its manifest (errors point into it).
Config checkpoint_config(const CheckpointInfo& info);
// Loads weights (and moments, when adam_m/adam_v are given) into buffers laid out like
// `params`, which may be any rank's shard or stage part.
CheckpointInfo load_checkpoint(const std::string& step_dir, const ParameterStore& params, Tensor* adam_m,
                               Tensor* adam_v);

}  // namespace tessel

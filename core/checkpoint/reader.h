// Opening a checkpoint: its manifest verified (its own checksum, format version, every tensor
// covered exactly by its pieces, every file present with its recorded size); then each rank
// reads only the pieces that overlap its own shard of each parameter, whatever layout saved
// them, checking each piece's crc32c, so a damaged checkpoint gives an error naming the file and
// the tensor. No communication here: train/checkpointer.h coordinates the ranks. Not
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint/format.h"
#include "core/config/config.h"
#include "core/model/parameters.h"

namespace tessel {

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
  const CheckpointMeta& meta() const { return meta_; }
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
  CheckpointMeta meta_;
};

// The meta of a step directory's verified manifest.
CheckpointMeta read_checkpoint_meta(const std::string& step_dir);
// The config a checkpoint was trained with, parsed from its manifest (errors point into it).
Config checkpoint_config(const CheckpointMeta& meta);
// Loads weights (and moments, when adam_m/adam_v are given) into buffers laid out like
// `params`, which may be any rank's shard or stage part.
CheckpointMeta load_checkpoint(const std::string& step_dir, const ParameterStore& params, Tensor* adam_m,
                               Tensor* adam_v);

}  // namespace tessel

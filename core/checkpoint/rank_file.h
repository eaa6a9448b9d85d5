// A rank's file of a checkpoint: its pieces of the global tensors (weights and AdamW moments),
// each described by its region of the global tensor, as one safetensors file
// (rank_NNNNN.safetensors) in the step directory being written (core/checkpoint/format.h).
// The description and checksum of every piece travel in the file's metadata, from which the
// manifest is built (core/checkpoint/manifest.h). Not thread-safe, except as said below.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/parameters.h"

namespace tessel {

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
}  // namespace tessel

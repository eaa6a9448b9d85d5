// The checkpoint format: what a checkpoint records besides its tensors, and how things are
// named on disk (docs/checkpoints.md).
//
// <root>/step_NNNNNNNN/ holds one safetensors file per rank that holds state
// (rank_NNNNN.safetensors: its pieces of the global tensors, each a box of the tensor and a
// range of the box's elements, core/checkpoint/region.h) and manifest.pb (protobuf,
// core/checkpoint/manifest.proto): format version, step and counters, the resolved config,
// the layout, and for every piece its global tensor, region, file, byte range and crc32c.
// <root>/latest names the newest complete step directory. A directory without a manifest is
// never taken for a checkpoint.
//
// The other headers of this folder: rank_file.h (a rank's pieces, written), manifest.h (the
// manifest, internal), directory.h (step directories: prepare, publish, find, prune), writer.h
// (a save in one process), reader.h (verify and load, under any layout), hf_format.h (Hugging
// Face export and import). Plain values here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessel {

constexpr int kCheckpointFormatVersion = 3;  // 3: manifest and per-rank files with regions
constexpr const char* kManifestFile = "manifest.pb";

struct TrainingState {
  int64_t step = 0;                   // steps completed
  uint64_t consumed_samples = 0;      // global data counter: the next step reads from here
  int64_t optimizer_steps = 0;        // AdamW updates applied (bias-correction t)
  int64_t skipped_total = 0;          // non-finite steps skipped so far
  int64_t skipped_streak = 0;         // consecutive skipped steps at save time
  double loss_scale = 1.0;            // fp16's loss scale (1 without loss scaling); a save takes
  int64_t loss_scale_good_steps = 0;  // both from the train step's scaler
};

struct CheckpointLayout {
  int tp = 1, pp = 1, dp = 1, zero = 0, virtual_stages = 1, world_size = 1;
  std::string schedule = "1f1b";
  std::string describe() const;  // "tp 2 x pp 2 x dp 2, zero 1"
};

// A dataset the run read, as the manifest records it (data/fingerprint.h computes it).
struct DatasetFingerprint {
  std::string role;  // "train" or "val"
  std::string path;
  uint64_t bytes = 0;
  std::string hash;
  std::string tokenizer;  // recorded by `tessel data prepare`; "" when the dataset records none
};

// What a manifest records besides the tensors; read back with the directory it came from.
struct CheckpointMeta {
  std::string path;  // the step directory it was read from (empty for one being written)
  TrainingState state;
  std::string config_yaml;
  CheckpointLayout layout;
  uint64_t seed = 0;
  bool has_optimizer = true;
  std::string tessel_version;            // who saved it ("" before version 0.1.0 recorded it)
  std::vector<DatasetFingerprint> data;  // what the run had read (empty for imports)
};

// The tensor names of the AdamW moments of parameter `name`.
std::string exp_avg_name(const std::string& name);     // "optim.exp_avg.<name>"
std::string exp_avg_sq_name(const std::string& name);  // "optim.exp_avg_sq.<name>"
inline constexpr const char* kExpAvgPrefix = "optim.exp_avg.";
inline constexpr const char* kExpAvgSqPrefix = "optim.exp_avg_sq.";

// "step_00000042" for step 42.
std::string step_dir_name(int64_t step);
// The step of a "step_NNNNNNNN" name, or -1 for anything else.
int64_t step_of(const std::string& name);

}  // namespace tessel

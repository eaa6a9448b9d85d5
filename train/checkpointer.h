// Checkpointer: saving and resuming one rank's part of a run (train/rank_model.h) together with
// the other ranks, in the format of core/checkpoint/checkpoint.h.
//
// Saving: rank 0 prepares step_N.tmp/, every rank copies its pieces out of the live buffers and
// writes its file, and rank 0 publishes the directory once all have. With checkpoint.async the
// copy is all the step loop waits for: the file is written by a background thread, and poll()
// (after each step) publishes it once every rank has finished; the next save, and the end of
// the run, wait for it. Only file I/O runs in the background; every communication stays on the
// calling thread.
//
// Resuming: rank 0 lists the candidates and every rank tries them in that order together, each
// reading only its own part; a candidate is taken only when it loaded on every rank, so no rank
// resumes elsewhere than the others and a piece damaged in one rank's part falls back for all.
// The run's own checkpoints (the newest complete one in checkpoint_root, then the older ones)
// always come first: `checkpoint.resume: PATH` names where a new run starts (an import, another
// run's checkpoint) and is taken only while the run has none of its own, or when PATH is one of
// the run's own step directories (going back on purpose). A checkpoint whose model or data is
// not this run's (train/resume_check.h) is refused as incompatible, not skipped as damaged.
// Every public method but load() is collective. Not thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/checkpoint/format.h"
#include "core/checkpoint/reader.h"
#include "core/config/config.h"
#include "train/rank_model.h"

namespace tessel {

// Rank `root`'s string on every rank of `group` (collective).
void broadcast_string(Communicator& group, std::string* text, int root);
// Where a run's checkpoints go: checkpoint.dir, or run.out_dir/checkpoints.
std::string checkpoint_root(const Config& config);

class Checkpointer {
 public:
  // data: the fingerprints of the datasets the run reads, recorded in every save and compared
  // on resume.
  Checkpointer(const Config& config, Communicator& world, RankModel& rank, std::vector<DatasetFingerprint> data = {});
  ~Checkpointer();  // waits for a background write; an unpublished save stays a .tmp directory

  const std::string& root() const { return root_; }

  // Saves the model, the optimizer and `state` (whose step names the directory). Returns the
  // step directory: published on return when synchronous, once poll()/wait() publish it with
  // checkpoint.async.
  std::string save(const TrainingState& state);
  // Publishes a background save that every rank has finished writing; cheap when none is.
  void poll();
  // Waits for a background save and publishes it.
  void wait();
  // Loads checkpoint.resume's choice into the model and the optimizer; info.path is empty when
  // the run starts fresh.
  CheckpointMeta resume();
  // Loads one step directory into this rank's part (this rank only).
  CheckpointMeta load(const std::string& dir);

  // Timing of the last save on this rank; bytes: every rank's pieces together.
  struct SaveTiming {
    double snapshot_s = 0;  // the copy the step loop waited for (the whole write when synchronous)
    double write_s = 0;     // this rank's file on disk
    uint64_t bytes = 0;
  };
  const SaveTiming& last_save() const { return timing_; }

 private:
  struct Pending {
    std::string tmp, dir;
    CheckpointMeta meta;
    std::thread thread;
    std::atomic<bool> done{false};
    std::exception_ptr error;
    double write_s = 0;
  };
  // Rank 0 lists the candidates, one per line.
  std::string candidate_checkpoints() const;
  // Throws IncompatibleCheckpoint (checkpointer.cc) when `reader`'s model or data is not this
  // run's; logs the settings that make the run diverge from the one it continues.
  void check_compatible(const CheckpointReader& reader) const;
  void publish(Pending& p);

  Config config_;
  Communicator& world_;
  RankModel& rank_;
  bool writer_;
  std::string root_;
  std::vector<DatasetFingerprint> data_;
  std::unique_ptr<Pending> pending_;
  SaveTiming timing_;
};

}  // namespace tessel

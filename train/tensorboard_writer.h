// Writes TensorBoard event files so that `tensorboard --logdir` plots Tessel's training curves
// (format in REFERENCE.md, "TensorBoard event files").
//
// A TensorBoardWriter owns one file, `events.out.tfevents.<10-digit unix seconds>.<host>.tessel`,
// created in `log_dir` (created if missing) together with its first record, the file_version
// event. Each add_scalar appends one framed Event record to an in-memory buffer; flush() hands
// the buffer to the OS (no fsync: losing the last few points in a crash is acceptable, a sync per
// step is not). The destructor flushes. Only the rank that logs (rank 0) should own one. Not
// thread-safe: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "train/metrics.h"

namespace tessel {

// Frames one record as TFRecord does: u64 length, u32 masked crc32c(length bytes), the data,
// u32 masked crc32c(data), integers little-endian.
std::string tfrecord_frame(const std::string& data);

class TensorBoardWriter final : public MetricsSink {
 public:
  // `clock` returns the wall time in seconds since the epoch; tests pass a fixed one so that
  // the file's bytes are reproducible. Empty means the system clock.
  explicit TensorBoardWriter(const std::string& log_dir, std::function<double()> clock = {});
  ~TensorBoardWriter() override;
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(const std::string& tag, float value, int64_t step);
  // The step's values that have a tag; flushed on log steps, so TensorBoard follows the run live.
  void write(const StepMetrics& m) override;
  void flush() override;
  const std::string& path() const { return path_; }

 private:
  void append_event(const std::string& serialized_event);

  std::function<double()> clock_;
  std::string path_;
  int fd_ = -1;
  std::string pending_;  // framed records not yet written
};

}  // namespace tessel

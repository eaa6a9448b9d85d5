// One training step's figures and the sinks that record them: the console's progress line
// (ConsoleSink, here), metrics.jsonl (train/metrics_log.h) and TensorBoard event files
// (train/tensorboard_writer.h).
//
// The trainer names each figure once, in a StepMetrics: its metrics.jsonl key, its value and,
// when TensorBoard plots it, its tag. Every sink reads the same record, so a figure added there
// reaches every sink without a second list to keep in step. Sinks are owned by the trainer of
// rank 0 and called from its thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessel {

struct Metric {
  std::string name;  // its key in metrics.jsonl
  double value = 0.0;
  std::string tensorboard;  // its TensorBoard tag; empty: not plotted
};

struct StepMetrics {
  int64_t step = 0;            // steps completed
  int64_t steps = 0;           // run.steps
  bool log_step = false;       // a step run.log_every shows (and the last, and evaluated ones)
  double eta_s = 0.0;          // to run.steps, from the mean step time so far
  bool skipped = false;        // the update was skipped (non-finite gradients)
  bool overflow = false;       // ... because fp16's loss scale overflowed
  std::vector<Metric> values;  // in the order metrics.jsonl writes them

  // The value named `name`, or nullptr.
  const double* find(const std::string& name) const;
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // Called after every step.
  virtual void write(const StepMetrics& m) = 0;
  // Called at the end of the run; what was written reaches the file system.
  virtual void flush() {}
};

// The progress line of rank 0 on log steps, through spdlog:
//   step   100/2000 | loss 3.2815 | lr 6.00e-04 | grad norm 0.412 | 41203 tok/s | 1.234 TFLOP/s | ETA 12m03s
// followed, when present, by the eval loss, the loss scale and a note on a skipped update. The
// loss is the mean of the steps since the previous line (finite ones; "mean of 5" says how many
// when more than one), so a sparse log still shows the trend; the other figures are the step's
// own. metrics.jsonl keeps every step's loss.
class ConsoleSink final : public MetricsSink {
 public:
  void write(const StepMetrics& m) override;
  // The line for step m, or "" when m is not a log step; every step's loss enters the mean.
  std::string next_line(const StepMetrics& m);

 private:
  double loss_sum_ = 0.0;
  int64_t loss_count_ = 0;
};

// "12m03s", or "1h02m" from an hour on.
std::string format_duration(double seconds);

}  // namespace tessel

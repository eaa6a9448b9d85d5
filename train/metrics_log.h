// An append-only JSON-lines log of training metrics: one object per line, `step` first and the
// wall-clock time it was written last (seconds since the epoch, to the millisecond), e.g.
//   {"step":100,"loss":3.2815,"lr":0.0006,"tokens_per_s":412034,"time":1796472153.812}
// Plain text so that `jq`, pandas (`read_json(lines=True)`) or a shell can read a run while
// it trains. Values JSON cannot hold (NaN, ±inf) are written as null, so every line stays valid
// JSON and a diverged run is still readable.
//
// MetricsLog owns its file, opened for appending (a resumed run continues the same log). Each
// line goes to the OS in one write as soon as it is logged, so a crash loses at most the line
// being written. Not thread-safe: one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/metrics.h"

namespace tessel {

class MetricsLog final : public MetricsSink {
 public:
  explicit MetricsLog(const std::string& path);
  ~MetricsLog() override;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Appends {"step": step, name: value, ...} in the given order. Names must not be "step".
  void log(int64_t step, const std::vector<std::pair<std::string, double>>& fields);
  // Appends the step's every value, in its order, then "time".
  void write(const StepMetrics& m) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Keeps only the lines of an existing metrics file whose step is <= `step` (all lines go for
// step 0), so a resumed run continues the file without repeating steps. No file: nothing to do.
void truncate_metrics_after(const std::string& path, int64_t step);

// The sum of `key` over the lines of a metrics file that have it and were written at or after
// `since` (their "time", seconds since the epoch; lines without one count only for since 0).
// 0 when there is no file.
double sum_metric(const std::string& path, const std::string& key, double since);

// The line log() writes, newline included (exposed for tests and other writers).
std::string metrics_line(int64_t step, const std::vector<std::pair<std::string, double>>& fields);

}  // namespace tessel

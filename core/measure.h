// Small helpers for measurements: elapsed wall-clock time and the median of repeated timings.
// Pure, header-only.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace tessel {

using SteadyClock = std::chrono::steady_clock;

// Seconds from t0 to now.
inline double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// Wall-clock seconds since the Unix epoch: a time other processes (and hosts) can compare.
inline double epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The median of `x` (the mean of the two middle values for an even count); 0 when empty.
inline double median(std::vector<double> x) {
  if (x.empty()) return 0;
  std::sort(x.begin(), x.end());
  const size_t n = x.size();
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

}  // namespace tessel

// Greedy weighted blending; see blend_schedule.h.
#include "data/blend_schedule.h"

#include <cmath>

#include "core/error.h"

namespace tessel {

BlendSchedule::BlendSchedule(std::vector<double> weights) : weights_(std::move(weights)) {
  TESSEL_CHECK(!weights_.empty()) << "blending needs at least one dataset weight";
  double sum = 0;
  for (size_t d = 0; d < weights_.size(); ++d) {
    TESSEL_CHECK(std::isfinite(weights_[d]) && weights_[d] >= 0)
        << "dataset " << d << " has weight " << weights_[d] << "; weights must be finite and >= 0";
    sum += weights_[d];
  }
  TESSEL_CHECK(sum > 0) << "dataset weights sum to " << sum << "; at least one must be positive";
  for (double& w : weights_) w /= sum;
  snapshots_.assign(weights_.size(), 0);  // block 0: nothing counted yet
}

int BlendSchedule::choose(uint64_t i, const int64_t* counts) const {
  const double n = static_cast<double>(i + 1);
  int best = 0;
  double best_error = std::fma(weights_[0], n, -static_cast<double>(counts[0]));
  for (size_t d = 1; d < weights_.size(); ++d) {
    const double error = std::fma(weights_[d], n, -static_cast<double>(counts[d]));
    if (error > best_error) {
      best_error = error;
      best = static_cast<int>(d);
    }
  }
  return best;
}

BlendSchedule::Assignment BlendSchedule::locate(uint64_t global_index) const {
  const size_t num = weights_.size();
  if (num == 1) return {0, static_cast<int64_t>(global_index)};
  const uint64_t block = global_index / kBlock;
  std::vector<int64_t> counts(num);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (snapshots_.size() / num <= block) {
      const uint64_t start = (snapshots_.size() / num - 1) * kBlock;
      std::vector<int64_t> c(snapshots_.end() - static_cast<std::ptrdiff_t>(num), snapshots_.end());
      for (uint64_t i = start; i < start + kBlock; ++i) ++c[choose(i, c.data())];
      snapshots_.insert(snapshots_.end(), c.begin(), c.end());
    }
    std::copy(snapshots_.begin() + static_cast<std::ptrdiff_t>(block * num),
              snapshots_.begin() + static_cast<std::ptrdiff_t>((block + 1) * num), counts.begin());
  }
  for (uint64_t i = block * kBlock; i < global_index; ++i) ++counts[choose(i, counts.data())];
  const int d = choose(global_index, counts.data());
  return {d, counts[d]};
}

}  // namespace tessel

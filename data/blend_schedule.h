// BlendSchedule: which dataset each global sample comes from when several are blended by weight.
//
// Megatron's greedy rule (megatron/core/datasets/helpers.cpp build_blending_indices): with
// weights normalized to sum 1, sample i goes to the dataset d maximizing
// weight_d·(i+1) − count_d, where count_d is how many of samples 0..i-1 went to d; ties go to the
// lowest d. (Megatron uses max(i, 1) where Tessel uses i+1; the two differ only in tie order.)
// The error term is computed with one fused multiply-add so that every build and machine picks
// the same dataset. The rule is prefix-stable: the choice for i depends only on the weights and
// i, never on which other samples were asked for.
//
// Memory is bounded: the schedule keeps the per-dataset counts at every kBlock-th sample
// (D int64 per block), extended lazily up to the highest block asked for, and replays at most
// kBlock steps from the nearest snapshot. Thread-safe: concurrent locate() calls share the
// snapshot table under a mutex and replay without holding it.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace tessel {

class BlendSchedule {
 public:
  static constexpr uint64_t kBlock = 1024;

  struct Assignment {
    int dataset = 0;    // d
    int64_t index = 0;  // how many samples before this one went to d: its sample number in d
  };

  // Weights must be finite, >= 0, with a positive sum; they are normalized here.
  explicit BlendSchedule(std::vector<double> weights);
  BlendSchedule(const BlendSchedule&) = delete;
  BlendSchedule& operator=(const BlendSchedule&) = delete;

  Assignment locate(uint64_t global_index) const;
  const std::vector<double>& weights() const { return weights_; }  // normalized

 private:
  // Dataset chosen for sample i given the counts of samples 0..i-1.
  int choose(uint64_t i, const int64_t* counts) const;

  std::vector<double> weights_;
  mutable std::mutex mutex_;
  mutable std::vector<int64_t> snapshots_;  // (blocks, D): counts before sample b·kBlock
};

}  // namespace tessel

// Sampler: the deterministic, layout-free map from a global sample index to training tokens.
//
// The whole state of Tessel's data pipeline is one global sample counter held by the caller
// (DESIGN.md §8): step s reads samples [s·G, (s+1)·G) and data-parallel rank r reads its
// contiguous slice. sample(i) depends only on (i, sources, weights, seq_len, seed), so a run
// resumes on any number of ranks and reads exactly what the uninterrupted run would have read.
//
// How sample i is found (docs/data.md has the full contract):
//  1. Blend: BlendSchedule picks dataset d and k, the number of earlier samples that went to d.
//  2. Windows: dataset d is cut into N_d = (num_tokens − 1) / seq_len non-overlapping windows;
//     window w is tokens [w·T, w·T + T + 1) (inputs [0, T), targets shifted by one).
//  3. Shuffle: epoch e = k / N_d, window = WindowPermutation(N_d, key(seed, d, e))(k mod N_d),
//     with key(seed, d, e) = hash_combine(hash_combine(seed, d), e): every epoch visits every
//     window once, in a fresh order.
// Every token is checked against vocab_size. Sources are shared and read-only; the Sampler is
// immutable apart from BlendSchedule's internal cache, so const calls are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "data/blend_schedule.h"
#include "data/token_source.h"

namespace tessel {

class Sampler {
 public:
  // Where global sample i reads from.
  struct Location {
    int dataset = 0;               // d
    int64_t index_in_dataset = 0;  // k: sample number within dataset d
    int64_t epoch = 0;             // k / N_d
    int64_t window = 0;            // permuted window in [0, N_d)
    int64_t token_begin = 0;       // window · seq_len
  };

  // One weight per source (normalized here; >= 0, positive sum). seq_len T >= 1; each source
  // with positive weight needs at least T + 1 tokens. Throws tessel::Error naming the source.
  Sampler(std::vector<std::shared_ptr<const TokenSource>> sources, std::vector<double> weights, int64_t seq_len,
          uint64_t seed, int64_t vocab_size);

  // Fills out[0..seq_len] (seq_len + 1 tokens): inputs are out[0..T), targets out[1..T].
  // Throws tessel::Error naming the source path, token position and value when a token is
  // negative or >= vocab_size.
  void sample(uint64_t global_index, int32_t* out) const;
  Location locate(uint64_t global_index) const;

  int64_t seq_len() const { return seq_len_; }
  uint64_t seed() const { return seed_; }
  int64_t vocab_size() const { return vocab_size_; }
  int num_sources() const { return static_cast<int>(sources_.size()); }
  const TokenSource& source(int d) const { return *sources_[static_cast<size_t>(d)]; }
  // N_d: windows in source d, i.e. its samples per epoch.
  int64_t windows(int d) const { return windows_[static_cast<size_t>(d)]; }
  // Sum of N_d over sources with positive weight: distinct windows the sampler can visit.
  uint64_t samples_per_epoch() const;
  const std::vector<double>& weights() const { return blend_.weights(); }  // normalized

 private:
  std::vector<std::shared_ptr<const TokenSource>> sources_;
  std::vector<int64_t> windows_;
  int64_t seq_len_;
  uint64_t seed_;
  int64_t vocab_size_;
  BlendSchedule blend_;
};

}  // namespace tessel

// WindowPermutation: a keyed pseudo-random bijection of [0, n), computed per element in O(1)
// time and memory, so shuffling a dataset's windows never materializes a permutation array and
// any element can be looked up independently (what makes the sampler layout-free).
//
// Construction: a balanced Feistel network (kRounds rounds, round function mix64 keyed by
// hash_combine(key, round)) over 2^(2h) values, where 2h is the bit width of n-1 rounded up to
// an even number, plus cycle walking (re-encrypt until the value falls below n). The Feistel
// network is a bijection on its domain, so cycle walking yields a bijection on [0, n); the domain
// is less than 4n, so the expected number of walks is below 4. The exact algorithm is part of
// the data order contract (docs/data.md). Immutable; thread-safe.
#pragma once

#include <cstdint>

namespace tessel {

class WindowPermutation {
 public:
  static constexpr int kRounds = 6;

  // n >= 1.
  WindowPermutation(uint64_t n, uint64_t key);

  // The image of j (j < n); throws tessel::Error when j >= n.
  uint64_t operator()(uint64_t j) const;
  uint64_t size() const { return n_; }

 private:
  uint64_t encrypt(uint64_t x) const;

  uint64_t n_;
  int half_bits_ = 0;       // h: each Feistel half holds h bits
  uint64_t half_mask_ = 0;  // 2^h - 1
  uint64_t round_keys_[kRounds];
};

}  // namespace tessel

// Feistel permutation with cycle walking; see window_permutation.h.
#include "data/window_permutation.h"

#include "core/error.h"
#include "data/hash.h"

namespace tessel {

WindowPermutation::WindowPermutation(uint64_t n, uint64_t key) : n_(n) {
  TESSEL_CHECK(n >= 1) << "WindowPermutation needs n >= 1, got " << n;
  int bits = 0;
  while (bits < 64 && ((n - 1) >> bits) != 0) ++bits;
  half_bits_ = (bits + 1) / 2;
  if (half_bits_ == 0) half_bits_ = 1;
  half_mask_ = half_bits_ >= 64 ? ~uint64_t{0} : (uint64_t{1} << half_bits_) - 1;
  for (int r = 0; r < kRounds; ++r) round_keys_[r] = hash_combine(key, static_cast<uint64_t>(r));
}

uint64_t WindowPermutation::encrypt(uint64_t x) const {
  uint64_t left = x >> half_bits_, right = x & half_mask_;
  for (int r = 0; r < kRounds; ++r) {
    const uint64_t f = mix64(right ^ round_keys_[r]) & half_mask_;
    const uint64_t next = left ^ f;
    left = right;
    right = next;
  }
  return (left << half_bits_) | right;
}

uint64_t WindowPermutation::operator()(uint64_t j) const {
  TESSEL_CHECK(j < n_) << "WindowPermutation: index " << j << " outside [0, " << n_ << ")";
  if (n_ == 1) return 0;
  uint64_t x = encrypt(j);
  while (x >= n_) x = encrypt(x);
  return x;
}

}  // namespace tessel

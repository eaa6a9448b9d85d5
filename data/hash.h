// Integer hashing shared by the data pipeline's deterministic choices (window permutations,
// train/val splits). These functions define on-disk-visible behaviour: which window a sample
// reads and which document lands in validation. Changing them changes every run's data order,
// so treat them as a format. Pure functions; thread-safe.
#pragma once

#include <cstdint>

namespace tessel {

// The splitmix64 finalizer (Steele et al.): a bijection on 64-bit integers with full avalanche.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Keyed hash of one value: hash_combine(key, value) = mix64(key ^ mix64(value)).
inline uint64_t hash_combine(uint64_t key, uint64_t value) { return mix64(key ^ mix64(value)); }

// A hash mapped to [0, 1) using its top 53 bits, so the result is exact in a double.
inline double hash_to_unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

}  // namespace tessel

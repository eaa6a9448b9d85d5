// Counter-based random numbers for parameter initialization (Philox-4x32-10).
//
// A parameter element's initial value is a pure function of (seed, parameter name, global
// element index): the name and seed form the key, the index is the counter. No generator state
// is carried from one tensor to the next, so a parameter gets the same values whatever the
// flat-buffer order, the tensor-parallel shard a rank owns, or the number of ranks.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace tessel {

// Philox-4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// 64-bit FNV-1a of a string: turns a parameter name into part of the key.
uint64_t fnv1a64(const std::string& text);

// Standard normal samples come four per Philox draw: elements 4k..4k+3 of a stream share the
// draw at counter k (two Box-Muller pairs, cos and sin of each), so filling a tensor costs one
// draw, two logs and two sincos per four values. Element i is still a pure function of i.
void normals_at4(uint64_t seed, uint64_t name_hash, uint64_t block, float out[4]);

// A standard normal sample for element `index` of the stream named by (seed, name).
float normal_at(uint64_t seed, const std::string& name, uint64_t index);
// The same with the name already hashed (fnv1a64), for loops over one tensor.
float normal_at(uint64_t seed, uint64_t name_hash, uint64_t index);
// A uniform sample in [0, 1) for element `index` of the stream named by (seed, name_hash).
double uniform_at(uint64_t seed, uint64_t name_hash, uint64_t index);

}  // namespace tessel

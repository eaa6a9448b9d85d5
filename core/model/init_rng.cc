#include "core/model/init_rng.h"

#include <cmath>

namespace tessel {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {
std::array<uint32_t, 4> draw(uint64_t seed, uint64_t name_hash, uint64_t index) {
  // Key: the seed; counter: (index, name hash) so distinct names never share a stream.
  return philox4x32({static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), static_cast<uint32_t>(name_hash),
                     static_cast<uint32_t>(name_hash >> 32)},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}
}  // namespace

void normals_at4(uint64_t seed, uint64_t name_hash, uint64_t block, float out[4]) {
  const auto r = draw(seed, name_hash, block);
  for (int pair = 0; pair < 2; ++pair) {
    // u1 in (0, 1] keeps the log finite; 32-bit uniforms reach 6.6 standard deviations.
    const double u1 = (static_cast<double>(r[2 * pair]) + 1.0) / 4294967296.0;
    const double u2 = static_cast<double>(r[2 * pair + 1]) / 4294967296.0;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586 * u2;
    out[2 * pair] = static_cast<float>(radius * std::cos(angle));
    out[2 * pair + 1] = static_cast<float>(radius * std::sin(angle));
  }
}

float normal_at(uint64_t seed, uint64_t name_hash, uint64_t index) {
  float four[4];
  normals_at4(seed, name_hash, index / 4, four);
  return four[index % 4];
}

float normal_at(uint64_t seed, const std::string& name, uint64_t index) {
  return normal_at(seed, fnv1a64(name), index);
}

double uniform_at(uint64_t seed, uint64_t name_hash, uint64_t index) {
  const auto r = draw(seed, name_hash, index);
  const uint64_t a = (static_cast<uint64_t>(r[0]) << 21) ^ r[1];
  return static_cast<double>(a & ((1ull << 53) - 1)) / 9007199254740992.0;
}

}  // namespace tessel

// The sampler's contract: sample i is a function of (i, sources, weights, seq_len, seed) only;
// windows are visited once per epoch through a bijective shuffle; blending follows the weights.
#include "data/sampler.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <thread>

#include "data/window_permutation.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

using testing::VectorSource;

// Token t of source `tag` is tag * 10000 + t, so a sample reveals its source and offset.
std::shared_ptr<const TokenSource> counting_source(int tag, int64_t n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) tokens[static_cast<size_t>(t)] = tag * 10000 + static_cast<int32_t>(t);
  return std::make_shared<VectorSource>(std::move(tokens), "mem" + std::to_string(tag));
}

std::vector<int32_t> sample_of(const Sampler& s, uint64_t i) {
  std::vector<int32_t> out(static_cast<size_t>(s.seq_len() + 1));
  s.sample(i, out.data());
  return out;
}

TEST_CASE("window permutation is a bijection of 0..n-1 for many n and keys", "[data]") {
  std::vector<uint64_t> sizes;
  for (uint64_t n = 1; n <= 300; ++n) sizes.push_back(n);
  for (uint64_t n : {511u, 512u, 513u, 1000u, 4096u, 4097u, 65535u, 100003u}) sizes.push_back(n);
  for (uint64_t n : sizes) {
    for (uint64_t key : {0ull, 1ull, 0xdeadbeefcafef00dull}) {
      WindowPermutation p(n, key);
      std::vector<char> seen(n, 0);
      bool bijective = true;
      for (uint64_t j = 0; j < n && bijective; ++j) {
        const uint64_t v = p(j);
        bijective = v < n && seen[v] == 0;
        if (bijective) seen[v] = 1;
      }
      INFO("n = " << n << ", key = " << key);
      CHECK(bijective);
    }
  }
}

TEST_CASE("window permutation shuffles and depends on its key", "[data]") {
  const uint64_t n = 1000;
  WindowPermutation a(n, 1), b(n, 2);
  int fixed_points = 0, same = 0;
  for (uint64_t j = 0; j < n; ++j) {
    fixed_points += a(j) == j;
    same += a(j) == b(j);
  }
  // A random permutation has about 1 fixed point and agrees with another in about 1 place.
  CHECK(fixed_points < 10);
  CHECK(same < 10);
  CHECK_THROWS_AS(a(n), Error);
  // Large n works in O(1) without materializing anything.
  WindowPermutation big(uint64_t{1} << 40, 7);
  CHECK(big((uint64_t{1} << 40) - 1) < (uint64_t{1} << 40));
}

TEST_CASE("sampler is deterministic and every sample is one window plus its target", "[data]") {
  const int64_t T = 8;
  auto src = counting_source(1, 10 * T + 5);  // N = (85 - 1) / 8 = 10 windows
  Sampler a({src}, {1.0}, T, 42, 1 << 20);
  Sampler b({src}, {1.0}, T, 42, 1 << 20);
  CHECK(a.windows(0) == 10);
  CHECK(a.samples_per_epoch() == 10);
  for (uint64_t i = 0; i < 35; ++i) {
    const auto s = sample_of(a, i);
    CHECK(s == sample_of(b, i));
    // Contiguous tokens starting at a multiple of T.
    const int32_t first = s[0] - 10000;
    CHECK(first % T == 0);
    for (int64_t t = 0; t <= T; ++t) CHECK(s[static_cast<size_t>(t)] == s[0] + t);
    const Sampler::Location loc = a.locate(i);
    CHECK(loc.token_begin == first);
    CHECK(loc.epoch == static_cast<int64_t>(i / 10));
  }
  // A different seed gives a different order.
  Sampler c({src}, {1.0}, T, 43, 1 << 20);
  int differ = 0;
  for (uint64_t i = 0; i < 10; ++i) differ += sample_of(a, i) != sample_of(c, i);
  CHECK(differ > 0);
}

TEST_CASE("each epoch visits every window exactly once, in a new order", "[data]") {
  const int64_t T = 4;
  auto src = counting_source(0, 37 * T + 1);  // exactly 37 windows
  Sampler s({src}, {1.0}, T, 7, 1 << 20);
  REQUIRE(s.windows(0) == 37);
  std::vector<int64_t> epoch0, epoch1;
  for (uint64_t i = 0; i < 37; ++i) epoch0.push_back(s.locate(i).window);
  for (uint64_t i = 37; i < 74; ++i) epoch1.push_back(s.locate(i).window);
  CHECK(std::set<int64_t>(epoch0.begin(), epoch0.end()).size() == 37);
  CHECK(std::set<int64_t>(epoch1.begin(), epoch1.end()).size() == 37);
  CHECK(epoch0 != epoch1);
}

TEST_CASE("blending follows the weights for every prefix", "[data]") {
  const int64_t T = 4;
  auto a = counting_source(1, 101), b = counting_source(2, 101), c = counting_source(3, 101);
  Sampler s({a, b, c}, {7, 2, 1}, T, 5, 1 << 20);  // normalized to 0.7, 0.2, 0.1
  CHECK(s.weights()[0] == Approx(0.7));
  std::vector<int64_t> counts(3, 0);
  int64_t wrong_index = 0;
  double worst = 0;
  const uint64_t n = 5000;  // spans several BlendSchedule blocks
  for (uint64_t i = 0; i < n; ++i) {
    const Sampler::Location loc = s.locate(i);
    // k is the number of earlier samples that went to the same dataset.
    if (loc.index_in_dataset != counts[static_cast<size_t>(loc.dataset)]) ++wrong_index;
    ++counts[static_cast<size_t>(loc.dataset)];
    for (int d = 0; d < 3; ++d) {
      const double share = s.weights()[static_cast<size_t>(d)] * static_cast<double>(i + 1);
      worst = std::max(worst, std::abs(static_cast<double>(counts[static_cast<size_t>(d)]) - share));
    }
  }
  CHECK(wrong_index == 0);
  // The greedy rule keeps every count within one sample of its share, for every prefix.
  CHECK(worst <= 1.0);
  CHECK(counts == std::vector<int64_t>{3500, 1000, 500});
  // The sample really comes from the chosen source.
  for (uint64_t i = 0; i < 20; ++i) {
    CHECK(sample_of(s, i)[0] / 10000 == s.locate(i).dataset + 1);
  }
  // First choices: highest weight first, ties to the lowest index.
  Sampler even({a, b}, {1, 1}, T, 5, 1 << 20);
  CHECK(even.locate(0).dataset == 0);
  CHECK(even.locate(1).dataset == 1);
  CHECK(even.locate(2).dataset == 0);
}

TEST_CASE("sample(i) does not depend on which indices were requested before", "[data]") {
  const int64_t T = 16;
  auto a = counting_source(1, 1000), b = counting_source(2, 3000);
  const std::vector<uint64_t> probes = {77777, 3, 5000, 1023, 1024, 0, 200000};
  Sampler fresh_order({a, b}, {0.3, 0.7}, T, 99, 1 << 20);
  std::vector<std::vector<int32_t>> first;
  for (uint64_t i : probes) first.push_back(sample_of(fresh_order, i));
  Sampler sequential({a, b}, {0.3, 0.7}, T, 99, 1 << 20);
  for (uint64_t i = 0; i < 2000; ++i) sample_of(sequential, i);
  for (size_t p = 0; p < probes.size(); ++p) CHECK(sample_of(sequential, probes[p]) == first[p]);

  // And from several threads at once.
  Sampler shared({a, b}, {0.3, 0.7}, T, 99, 1 << 20);
  std::vector<std::vector<int32_t>> got(probes.size());
  std::vector<std::thread> threads;
  for (size_t p = 0; p < probes.size(); ++p) {
    threads.emplace_back([&, p] { got[p] = sample_of(shared, probes[p]); });
  }
  for (auto& t : threads) t.join();
  for (size_t p = 0; p < probes.size(); ++p) CHECK(got[p] == first[p]);
}

TEST_CASE("a token outside the vocabulary is an error naming dataset, position, value", "[data]") {
  std::vector<int32_t> tokens(20, 5);
  tokens[13] = 300;
  auto src = std::make_shared<VectorSource>(tokens, "corpus_train");
  Sampler s({src}, {1.0}, 19, 1, 257);  // one window: all 20 tokens
  std::vector<int32_t> out(20);
  const std::string msg = testing::error_message([&] { s.sample(0, out.data()); });
  CHECK_THAT(msg, Catch::Contains("corpus_train") && Catch::Contains("token 13") && Catch::Contains("value 300") &&
                      Catch::Contains("vocab_size 257") && Catch::Contains("tokenizer"));
}

TEST_CASE("sampler rejects datasets too short for one sample and bad weights", "[data]") {
  auto small = counting_source(1, 8);
  CHECK_THAT(testing::error_message([&] { Sampler s({small}, {1.0}, 8, 1, 1 << 20); }),
             Catch::Contains("mem1") && Catch::Contains("needs at least 9"));
  auto ok = counting_source(2, 100);
  // A too-short dataset with weight 0 is never read, so it is allowed.
  Sampler zero({ok, small}, {1.0, 0.0}, 8, 1, 1 << 20);
  for (uint64_t i = 0; i < 50; ++i) CHECK(zero.locate(i).dataset == 0);
  CHECK_THROWS_AS(Sampler({ok}, {1.0, 2.0}, 8, 1, 1 << 20), Error);
  CHECK_THROWS_AS(Sampler({ok}, {-1.0}, 8, 1, 1 << 20), Error);
  CHECK_THROWS_AS(Sampler({ok}, {1.0}, 0, 1, 1 << 20), Error);
}

}  // namespace
}  // namespace tessel

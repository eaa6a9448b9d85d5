// Fused AdamW (optim/adamw.h) against a scalar reference of torch.optim.AdamW's update.
#include "optim/adamw.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/error.h"

namespace tessel {
namespace {

// torch.optim.AdamW for one scalar, in double, written out from its documentation.
struct ScalarAdamW {
  double p, m = 0, v = 0;
  void step(double grad, const AdamWStep& s) {
    const double g = grad * s.grad_scale;
    p -= s.lr * s.weight_decay * p;
    m = s.beta1 * m + (1 - s.beta1) * g;
    v = s.beta2 * v + (1 - s.beta2) * g * g;
    const double m_hat = m / (1 - std::pow(s.beta1, s.step));
    const double v_hat = v / (1 - std::pow(s.beta2, s.step));
    p -= s.lr * m_hat / (std::sqrt(v_hat) + s.eps);
  }
};

TEST_CASE("first AdamW step matches the hand-computed value", "[optim]") {
  // p = 1, g = 0.5·0.5 = 0.25, lr 0.1, wd 0.01: decay to 0.999; m̂ = 0.25, v̂ = 0.0625, so the
  // step is 0.1·0.25/(0.25 + 1e-8) = 0.099999996 and p = 0.899000004.
  float p = 1.0f, g = 0.5f, m = 0.0f, v = 0.0f;
  AdamWStep s{0.1, 0.9, 0.999, 1e-8, 0.01, 1, 0.5};
  adamw_update(&p, &g, &m, &v, 1, s);
  CHECK(m == Approx(0.025f).epsilon(1e-6));
  CHECK(v == Approx(6.25e-5f).epsilon(1e-6));
  CHECK(p == Approx(0.899000004).epsilon(1e-7));
}

TEST_CASE("three AdamW steps with decay and grad_scale follow the reference", "[optim]") {
  const std::vector<float> start = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f};
  const std::vector<std::vector<float>> grads = {
      {0.1f, -0.3f, 2.0f, 0.0f, -1.0f}, {0.2f, 0.1f, -1.0f, 0.5f, -1.0f}, {-0.4f, 0.2f, 0.3f, 0.5f, 1e-3f}};
  std::vector<float> p = start, m(5, 0.0f), v(5, 0.0f);
  std::vector<ScalarAdamW> ref;
  for (float x : start) ref.push_back(ScalarAdamW{x});
  for (int t = 1; t <= 3; ++t) {
    const AdamWStep s{1e-2, 0.9, 0.95, 1e-8, 0.1, t, t == 2 ? 0.25 : 1.0};
    adamw_update(p.data(), grads[t - 1].data(), m.data(), v.data(), 5, s);
    for (size_t i = 0; i < 5; ++i) ref[i].step(grads[t - 1][i], s);
  }
  for (size_t i = 0; i < 5; ++i) {
    INFO("element " << i);
    // fp32 arithmetic on values of order 1: a few ulps after three steps.
    CHECK(p[i] == Approx(ref[i].p).margin(1e-6));
    CHECK(m[i] == Approx(ref[i].m).margin(1e-7));
    CHECK(v[i] == Approx(ref[i].v).margin(1e-7));
  }
  // A zero gradient still decays the weight: p[3] started at 0 and stays there, but m, v move.
  CHECK(p[3] != 0.0f);
}

TEST_CASE("AdamW over a large buffer equals the same update element by element", "[optim]") {
  const int64_t n = 100003;  // not a multiple of any vector width
  std::vector<float> p(n), g(n), m(n), v(n);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = std::sin(0.01f * i);
    g[i] = std::cos(0.013f * i);
    m[i] = 0.01f * std::sin(0.7f * i);
    v[i] = 1e-4f * (1 + std::cos(0.3f * i));
  }
  std::vector<float> p1 = p, m1 = m, v1 = v;
  const AdamWStep s{3e-4, 0.9, 0.95, 1e-8, 0.1, 17, 0.8};
  adamw_update(p.data(), g.data(), m.data(), v.data(), n, s);
  for (int64_t i = 0; i < n; i += 9973) {
    adamw_update(&p1[i], &g[i], &m1[i], &v1[i], 1, s);
    CHECK(p1[i] == p[i]);
    CHECK(m1[i] == m[i]);
    CHECK(v1[i] == v[i]);
  }
}

TEST_CASE("AdamW rejects a 0-based step", "[optim]") {
  float p = 0, g = 0, m = 0, v = 0;
  CHECK_THROWS_WITH(adamw_update(&p, &g, &m, &v, 1, AdamWStep{1e-3, 0.9, 0.95, 1e-8, 0, 0, 1}),
                    Catch::Contains("step is 1-based"));
}

}  // namespace
}  // namespace tessel

TEST_CASE("adamw_update_segments equals one adamw_update per segment, bitwise", "[optim]") {
  const int64_t n = 1000;
  std::vector<float> p(n), g(n), m(n, 0.0f), v(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = std::sin(0.1f * i);
    g[i] = std::cos(0.37f * i);
  }
  std::vector<float> p2 = p, m2 = m, v2 = v;
  const std::vector<tessel::AdamWSegment> segs = {{0, 300, 0.1}, {300, 7, 0.0}, {307, 693, 0.05}};
  tessel::AdamWStep s;
  s.lr = 1e-2;
  s.step = 3;
  s.grad_scale = 0.5;
  tessel::adamw_update_segments(p.data(), g.data(), m.data(), v.data(), segs, s);
  for (const auto& seg : segs) {
    s.weight_decay = seg.weight_decay;
    tessel::adamw_update(p2.data() + seg.offset, g.data() + seg.offset, m2.data() + seg.offset, v2.data() + seg.offset,
                         seg.numel, s);
  }
  CHECK(p == p2);
  CHECK(m == m2);
  CHECK(v == v2);
}

TEST_CASE("adamw_update_segments reads gradients and moments at their own offsets", "[optim]") {
  // A ZeRO shard: parameters at their place in the full buffer, moments packed from 0, the
  // gradient in a third place.
  const int64_t n = 64;
  std::vector<float> p(n), g(n), m(20, 0.1f), v(20, 0.2f);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = std::sin(0.3f * i);
    g[i] = std::cos(0.7f * i);
  }
  std::vector<float> p2 = p, m2 = m, v2 = v;
  const std::vector<tessel::AdamWSegment> segs = {{10, 12, 0.1, 40, 0}, {50, 8, 0.0, 2, 12}};
  tessel::AdamWStep s;
  s.lr = 1e-2;
  s.step = 2;
  tessel::adamw_update_segments(p.data(), g.data(), m.data(), v.data(), segs, s);
  for (const auto& seg : segs) {
    s.weight_decay = seg.weight_decay;
    tessel::adamw_update(p2.data() + seg.offset, g.data() + seg.grad_offset, m2.data() + seg.state_offset,
                         v2.data() + seg.state_offset, seg.numel, s);
  }
  CHECK(p == p2);
  CHECK(m == m2);
  CHECK(v == v2);
  CHECK(p[9] == std::sin(0.3f * 9));  // outside every segment: untouched
}

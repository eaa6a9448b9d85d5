// Every CPU kernel's backward against finite differences of its forward.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "core/kernels/cpu/cpu_kernels.h"
#include "tests/core/kernels/gradient_check.h"

using namespace tessel;
using namespace tessel::cpu;
using tessel::testing::check_gradient;
using tessel::testing::random_vector;
using tessel::testing::weighted_sum;

TEST_CASE("embedding backward matches finite differences, repeated tokens included", "[cpu][kernels]") {
  const int64_t B = 2, T = 3, C = 5, V = 4;
  std::vector<int32_t> tokens = {1, 3, 1, 0, 1, 2};  // token 1 appears three times
  auto wte = random_vector(V * C, 1), wpe = random_vector(T * C, 2), r = random_vector(B * T * C, 3);
  std::vector<float> out(B * T * C);
  auto loss = [&] {
    embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    return weighted_sum(out, r);
  };
  std::vector<float> dwte(V * C, 0.0f), dwpe(T * C, 0.0f);
  embedding_backward(dwte.data(), dwpe.data(), r.data(), tokens.data(), B, T, C);
  check_gradient("wte", wte, dwte, loss);
  check_gradient("wpe", wpe, dwpe, loss);
}

TEST_CASE("matmul backward matches finite differences in both weight layouts", "[cpu][kernels]") {
  const int64_t N = 6, K = 5, OC = 7;
  for (WeightLayout layout : {WeightLayout::kOutIn, WeightLayout::kInOut}) {
    auto inp = random_vector(N * K, 10), w = random_vector(K * OC, 11), b = random_vector(OC, 12);
    auto r = random_vector(N * OC, 13);
    std::vector<float> out(N * OC);
    auto loss = [&] {
      matmul_forward(out.data(), OC, inp.data(), w.data(), b.data(), N, K, OC, layout);
      return weighted_sum(out, r);
    };
    std::vector<float> dinp(N * K), dw(K * OC, 0.0f), db(OC, 0.0f);
    matmul_backward(dinp.data(), dw.data(), db.data(), r.data(), OC, inp.data(), w.data(), N, K, OC, layout, false);
    check_gradient("inp", inp, dinp, loss);
    check_gradient("weight", w, dw, loss);
    check_gradient("bias", b, db, loss);
  }
}

TEST_CASE("matmul writes and reads a column block of a wider buffer", "[cpu][kernels]") {
  const int64_t N = 3, K = 4, OC = 2, width = 5, first = 2;
  auto inp = random_vector(N * K, 20), w = random_vector(OC * K, 21);
  std::vector<float> wide(N * width, 42.0f), narrow(N * OC);
  matmul_forward(wide.data() + first, width, inp.data(), w.data(), nullptr, N, K, OC, WeightLayout::kOutIn);
  matmul_forward(narrow.data(), OC, inp.data(), w.data(), nullptr, N, K, OC, WeightLayout::kOutIn);
  for (int64_t r = 0; r < N; ++r) {
    CHECK(wide[r * width + 0] == 42.0f);  // columns outside the block are untouched
    CHECK(wide[r * width + 1] == 42.0f);
    CHECK(wide[r * width + 4] == 42.0f);
    for (int64_t c = 0; c < OC; ++c) CHECK(wide[r * width + first + c] == narrow[r * OC + c]);
  }
}

TEST_CASE("layernorm backward matches finite differences", "[cpu][kernels]") {
  const int64_t N = 5, C = 8;
  auto x = random_vector(N * C, 30, 2.0f), w = random_vector(C, 31), b = random_vector(C, 32);
  auto r = random_vector(N * C, 33);
  std::vector<float> out(N * C), mean(N), rstd(N);
  auto loss = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
    return weighted_sum(out, r);
  };
  loss();
  std::vector<float> dx(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
  layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  check_gradient("x", x, dx, loss);
  check_gradient("weight", w, dw, loss);
  check_gradient("bias", b, db, loss);
}

TEST_CASE("rmsnorm backward matches finite differences", "[cpu][kernels]") {
  const int64_t N = 5, C = 8;
  auto x = random_vector(N * C, 40, 2.0f), w = random_vector(C, 41), r = random_vector(N * C, 42);
  std::vector<float> out(N * C), rstd(N);
  auto loss = [&] {
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
    return weighted_sum(out, r);
  };
  loss();
  std::vector<float> dx(N * C, 0.0f), dw(C, 0.0f);
  rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), N, C);
  check_gradient("x", x, dx, loss);
  check_gradient("weight", w, dw, loss);
}

TEST_CASE("norm backward adds into dinp (residual-stream gradient)", "[cpu][kernels]") {
  const int64_t N = 2, C = 4;
  auto x = random_vector(N * C, 45), w = random_vector(C, 46), r = random_vector(N * C, 47);
  std::vector<float> out(N * C), rstd(N), dw(C, 0.0f);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
  std::vector<float> from_zero(N * C, 0.0f), from_one(N * C, 1.0f);
  rmsnorm_backward(from_zero.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), N, C);
  rmsnorm_backward(from_one.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), N, C);
  for (int64_t i = 0; i < N * C; ++i) CHECK(from_one[i] == Approx(from_zero[i] + 1.0f).margin(1e-6));
}

TEST_CASE("gelu backward matches finite differences", "[cpu][kernels]") {
  const int64_t n = 64;
  auto x = random_vector(n, 50, 3.0f), r = random_vector(n, 51);
  std::vector<float> out(n);
  auto loss = [&] {
    gelu_forward(out.data(), x.data(), n);
    return weighted_sum(out, r);
  };
  std::vector<float> dx(n);
  gelu_backward(dx.data(), x.data(), r.data(), n);
  check_gradient("x", x, dx, loss, 64);
  // gelu(1) with the tanh approximation (GPT-2's gelu_new) = 0.8411920
  float one = 1.0f, y = 0.0f;
  gelu_forward(&y, &one, 1);
  CHECK(y == Approx(0.8411920f).epsilon(1e-6));
}

TEST_CASE("swiglu backward matches finite differences", "[cpu][kernels]") {
  const int64_t N = 3, F = 6;
  auto x = random_vector(N * 2 * F, 60, 2.0f), r = random_vector(N * F, 61);
  std::vector<float> out(N * F);
  auto loss = [&] {
    swiglu_forward(out.data(), x.data(), N, F);
    return weighted_sum(out, r);
  };
  std::vector<float> dx(N * 2 * F);
  swiglu_backward(dx.data(), x.data(), r.data(), N, F);
  check_gradient("gate|up", x, dx, loss, 64);
}

TEST_CASE("rope backward matches finite differences and rotates pairs (i, i + D/2)", "[cpu][kernels]") {
  const int64_t B = 2, T = 4, heads = 3, D = 6, ld = heads * D + 2;  // 2 untouched columns
  auto x = random_vector(B * T * ld, 70), r = random_vector(B * T * ld, 71);
  auto loss = [&] {
    std::vector<float> y = x;
    rope_forward(y.data(), ld, B, T, heads, D, 10000.0f);
    return weighted_sum(y, r);
  };
  std::vector<float> dx = r;
  rope_backward(dx.data(), ld, B, T, heads, D, 10000.0f);
  check_gradient("x", x, dx, loss, 200);
  // Position 1, pair i = 0 rotates by 1 radian: (a, b) -> (a cos1 − b sin1, b cos1 + a sin1).
  std::vector<float> y = x;
  rope_forward(y.data(), ld, B, T, heads, D, 10000.0f);
  const float a = x[ld + 0], b = x[ld + 3];
  CHECK(y[ld + 0] == Approx(a * std::cos(1.0f) - b * std::sin(1.0f)).margin(1e-6));
  CHECK(y[ld + 3] == Approx(b * std::cos(1.0f) + a * std::sin(1.0f)).margin(1e-6));
  CHECK(y[ld - 1] == x[ld - 1]);  // beyond the heads: untouched
}

namespace {
// Plain causal attention with a full score matrix, in double: the reference.
std::vector<double> naive_attention(const std::vector<float>& qkv, int64_t B, int64_t T, int64_t H, int64_t KV,
                                    int64_t D) {
  const int64_t ld = (H + 2 * KV) * D;
  std::vector<double> out(B * T * H * D, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / KV);
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(i + 1);
        double m = -1e300, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double d = 0;
          for (int64_t k = 0; k < D; ++k)
            d += double(qkv[(b * T + i) * ld + h * D + k]) * qkv[(b * T + j) * ld + H * D + g * D + k];
          s[j] = d / std::sqrt(double(D));
          m = std::max(m, s[j]);
        }
        for (auto& v : s) {
          v = std::exp(v - m);
          sum += v;
        }
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t k = 0; k < D; ++k)
            out[(b * T + i) * H * D + h * D + k] += s[j] / sum * qkv[(b * T + j) * ld + (H + KV) * D + g * D + k];
      }
    }
  return out;
}
}  // namespace

TEST_CASE("attention forward equals full-softmax causal attention, GQA and MHA", "[cpu][kernels]") {
  for (auto [H, KV] : {std::pair<int64_t, int64_t>{4, 2}, {3, 3}, {4, 1}}) {
    const int64_t B = 2, T = 7, D = 4;
    auto qkv = random_vector(B * T * (H + 2 * KV) * D, 80 + H + KV);
    std::vector<float> out(B * T * H * D), lse(B * H * T);
    attention_forward(out.data(), lse.data(), qkv.data(), B, T, H, KV, D);
    auto ref = naive_attention(qkv, B, T, H, KV, D);
    for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == Approx(ref[i]).margin(1e-5));
  }
}

TEST_CASE("attention spanning several query and key tiles equals full-softmax attention", "[cpu][kernels]") {
  // T = 150 crosses the 32-row query tiles and 64-key tiles at unaligned places.
  const int64_t B = 1, T = 150, H = 2, KV = 1, D = 8;
  auto qkv = random_vector(B * T * (H + 2 * KV) * D, 85, 2.0f);
  std::vector<float> out(B * T * H * D), lse(B * H * T);
  attention_forward(out.data(), lse.data(), qkv.data(), B, T, H, KV, D);
  auto ref = naive_attention(qkv, B, T, H, KV, D);
  for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(ref[i]).margin(2e-5));
}

TEST_CASE("attention backward matches finite differences across tiles", "[cpu][kernels]") {
  const int64_t B = 1, T = 70, H = 2, KV = 1, D = 4;
  auto qkv = random_vector(B * T * (H + 2 * KV) * D, 95), r = random_vector(B * T * H * D, 96);
  std::vector<float> out(B * T * H * D), lse(B * H * T);
  auto loss = [&] {
    attention_forward(out.data(), lse.data(), qkv.data(), B, T, H, KV, D);
    return weighted_sum(out, r);
  };
  loss();
  std::vector<float> dqkv(qkv.size(), 7.0f);
  attention_backward(dqkv.data(), r.data(), qkv.data(), out.data(), lse.data(), B, T, H, KV, D);
  check_gradient("qkv", qkv, dqkv, loss, 300);
}

TEST_CASE("attention backward matches finite differences, GQA", "[cpu][kernels]") {
  const int64_t B = 2, T = 5, H = 4, KV = 2, D = 4;
  auto qkv = random_vector(B * T * (H + 2 * KV) * D, 90), r = random_vector(B * T * H * D, 91);
  std::vector<float> out(B * T * H * D), lse(B * H * T);
  auto loss = [&] {
    attention_forward(out.data(), lse.data(), qkv.data(), B, T, H, KV, D);
    return weighted_sum(out, r);
  };
  loss();
  std::vector<float> dqkv(qkv.size(), 123.0f);  // overwritten, not accumulated
  attention_backward(dqkv.data(), r.data(), qkv.data(), out.data(), lse.data(), B, T, H, KV, D);
  check_gradient("qkv", qkv, dqkv, loss, 400);
}

TEST_CASE("classifier loss is the cross-entropy and its gradients match finite differences", "[cpu][kernels]") {
  const int64_t N = 5, C = 6, V = 11;
  auto x = random_vector(N * C, 100), w = random_vector(V * C, 101);
  std::vector<int32_t> targets = {0, 10, 3, 3, 7};
  std::vector<float> losses(N), ws(classifier_workspace_floats(N, V));
  auto loss = [&] {
    classifier_forward_backward(losses.data(), nullptr, nullptr, x.data(), w.data(), targets.data(), N, C, V, 0.0f,
                                ws.data());
    double s = 0;
    for (float l : losses) s += l;
    return s;
  };
  // Reference loss of row 0 in double.
  loss();
  double m = -1e300, z0 = 0;
  std::vector<double> z(V);
  for (int64_t v = 0; v < V; ++v) {
    for (int64_t c = 0; c < C; ++c) z[v] += double(x[c]) * w[v * C + c];
    m = std::max(m, z[v]);
  }
  for (int64_t v = 0; v < V; ++v) z0 += std::exp(z[v] - m);
  CHECK(losses[0] == Approx(m + std::log(z0) - z[0]).epsilon(1e-5));
  std::vector<float> dx(N * C), dw(V * C, 0.0f);
  classifier_forward_backward(losses.data(), dx.data(), dw.data(), x.data(), w.data(), targets.data(), N, C, V, 1.0f,
                              ws.data());
  check_gradient("x", x, dx, loss);
  check_gradient("weight", w, dw, loss, 66);
}

TEST_CASE("residual adds elementwise", "[cpu][kernels]") {
  std::vector<float> a = {1, 2, 3}, b = {10, 20, 30}, out(3);
  residual_forward(out.data(), a.data(), b.data(), 3);
  CHECK(out == std::vector<float>{11, 22, 33});
}

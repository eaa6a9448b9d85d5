// core/ops.cc's dispatch by device, on the CPU: tensors made by a device backend (here the
// emulated device of tests/core/emulated_device.h, which records each call) go to that backend with the sizes ops.cc
// derived, CPU tensors to the CPU launchers, and mixtures, foreign tensors and wrong dtypes are refused with the
// operand named.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/device_backend.h"
#include "core/ops.h"
#include "tests/core/emulated_device.h"

using namespace tessel;

using testing::EmulatedDevice;

TEST_CASE("ops on a device backend's tensors go to that backend with the derived sizes", "[cpu][ops]") {
  EmulatedDevice be;
  auto d = [&](const Shape& s, DType t = DType::BF16) { return be.empty(s, t); };
  const int64_t B = 2, T = 3, N = B * T, C = 8, V = 10, H = 4, KV = 2, D = 2, QKV = (H + 2 * KV) * D;
  Tensor tokens = d({B, T}, DType::I32), wte = d({V, C}), wpe = d({T, C}), x = d({N, C}), y = d({N, C});
  ops::embedding_forward(x, tokens, wte, &wpe);
  ops::embedding_backward(d({V, C}, DType::F32), nullptr, x, tokens);
  Tensor w = d({C, C}), b = d({C}), wide = d({N, 3 * C});
  ops::matmul_forward(wide, x, w, &b, ops::WeightLayout::kOutIn, {C, 3 * C});
  ops::matmul_backward(&y, d({C, C}, DType::F32), nullptr, wide, x, w, ops::WeightLayout::kOutIn, true, {C, 3 * C});
  Tensor mean = d({N}, DType::F32), rstd = d({N}, DType::F32), dw = d({C}, DType::F32), db = d({C}, DType::F32);
  ops::layernorm_forward(y, mean, rstd, x, b, b, 1e-5f);
  ops::layernorm_backward(y, dw, db, x, x, b, mean, rstd);
  ops::rmsnorm_forward(y, rstd, x, b, 1e-5f);
  ops::rmsnorm_backward(y, dw, x, x, b, rstd);
  ops::gelu_forward(y, x);
  ops::gelu_backward(y, x, x);
  Tensor gate_up = d({N, 2 * C});
  ops::swiglu_forward(x, gate_up);
  ops::swiglu_backward(gate_up, gate_up, x);
  Tensor qkv = d({N, QKV}), att = d({N, H * D}), lse = d({B, H, T}, DType::F32);
  ops::rope_forward(qkv, B, T, H, KV, 10000.0f);
  ops::rope_backward(qkv, B, T, H, KV, 10000.0f);
  ops::attention_forward(att, lse, qkv, B, T, H, KV);
  ops::attention_backward(qkv, att, qkv, att, lse, B, T, H, KV);
  ops::residual_forward(x, x, y);
  Tensor losses = d({N}, DType::F32), targets = d({N}, DType::I32), dx = d({N, C}), dwte = d({V, C}, DType::F32);
  Tensor ws = d({N * V * 6}, DType::U8);
  ops::classifier_forward_backward(losses, &dx, &dwte, x, wte, targets, 1.0f, ws);
  ops::classifier_forward_backward(losses, nullptr, nullptr, x, wte, targets, 1.0f, ws);
  CHECK(be.calls == std::vector<std::string>{
                        "embedding_forward B2 T3 start0 rows10 wpe",
                        "embedding_backward rows10",
                        "matmul_forward first8 width24 N6 K8 OC8 bias",
                        "matmul_backward first8 width24 N6 K8 OC8 accumulate",
                        "layernorm_forward N6 C8",
                        "layernorm_backward N6 C8",
                        "rmsnorm_forward N6 C8",
                        "rmsnorm_backward N6 C8",
                        "gelu_forward n48",
                        "gelu_backward n48",
                        "swiglu_forward N6 F8",
                        "swiglu_backward N6 F8",
                        "rope_forward ld16 heads6 D2",
                        "rope_backward ld16 heads6 D2",
                        "attention_forward B2 T3 H4 KV2 D2",
                        "attention_backward H4 KV2 D2",
                        "residual_forward n48",
                        "classifier N6 C8 V10 backward",
                        "classifier N6 C8 V10",
                    });
}

TEST_CASE("ops refuse mixed sides, foreign device tensors and the wrong dtypes, naming the operand",
          "[cpu][ops][errors]") {
  EmulatedDevice be, other;
  Tensor dev = be.empty({4, 8}, DType::BF16);
  Tensor host = Tensor::zeros({4, 8}, DType::F32);
  CHECK_THROWS_WITH(ops::gelu_forward(dev, host),
                    Catch::Contains("gelu_forward: out is BF16[4, 8] cuda:0 but inp is on cpu; hint: all tensors"));
  CHECK_THROWS_WITH(
      ops::gelu_forward(other.empty({4, 8}, DType::BF16), dev),
      Catch::Contains("gelu_forward: out is BF16[4, 8] cuda:0 but inp is on cuda:0 of another device context"));
  // A value of another floating type than the op's first.
  CHECK_THROWS_WITH(ops::gelu_forward(be.empty({4, 8}, DType::F16), dev),
                    Catch::Contains("out is F16[4, 8] cuda:0, expected BF16"));
  // Gradients of parameters are F32 whatever the values are.
  Tensor w = be.empty({8, 8}, DType::BF16);
  CHECK_THROWS_WITH(ops::matmul_backward(nullptr, be.empty({8, 8}, DType::BF16), nullptr, dev, dev, w,
                                         ops::WeightLayout::kOutIn, false),
                    Catch::Contains("matmul_backward: dweight must be F32"));
  // The CPU computes in F32 only.
  CHECK_THROWS_WITH(ops::gelu_forward(Tensor::zeros({4}, DType::BF16), Tensor::zeros({4}, DType::BF16)),
                    Catch::Contains("the CPU backend computes in F32 only"));
  // Memory on a device that no backend made cannot run ops.
  auto raw = Storage::wrap(host.raw(), host.nbytes(), Device::cuda(0), {});
  CHECK_THROWS_WITH(ops::gelu_forward(Tensor::from_storage(raw, {4, 8}, DType::F32), host),
                    Catch::Contains("was not made by a device backend"));
  CHECK(be.calls.empty());
}

TEST_CASE("ops on CPU tensors still run the CPU launchers", "[cpu][ops]") {
  Tensor x = Tensor::from_vector<float>({-1.0f, 0.0f, 2.0f}, {3});
  Tensor out = Tensor::zeros({3}, DType::F32);
  ops::residual_forward(out, x, x);
  CHECK(out.data<float>()[2] == 4.0f);
  ops::gelu_forward(out, x);
  CHECK(out.data<float>()[1] == 0.0f);
  CHECK(out.data<float>()[2] == Approx(1.9545977f).epsilon(1e-6));
}

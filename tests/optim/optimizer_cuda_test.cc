// The optimizer's CUDA kernels against the CPU ones ([gpu]: skipped with a message where there
// is no GPU): fused AdamW over fp32 master weights with a bf16 compute copy, the squared norm
// behind gradient clipping, and the non-finite check behind dynamic loss scaling.
#include <catch2/catch.hpp>

#ifdef TESSEL_HAVE_CUDA

#include <cmath>
#include <cstring>
#include <limits>

#include "core/kernels/cuda/cuda_kernels.h"
#include "optim/adamw.h"
#include "tests/core/kernels/cuda_parity.h"
#include "tests/core/kernels/gradient_check.h"

using namespace tessel;
using namespace tessel::testing;

TEST_CASE("CUDA AdamW matches the CPU update over three steps and writes the bf16 copy", "[gpu][optim]") {
  TESSEL_REQUIRE_GPU();
  cuda::DeviceContext ctx(0);
  const int64_t n = 100003;  // not a multiple of any block size
  auto param = random_vector(n, 1), m = std::vector<float>(n, 0.0f), v = std::vector<float>(n, 0.0f);
  Tensor g_param = upload<float>(ctx, param), g_m = upload<float>(ctx, m), g_v = upload<float>(ctx, v);
  Tensor g_copy = ctx.empty({n}, DType::BF16);
  for (int64_t step = 1; step <= 3; ++step) {
    auto grad = random_vector(n, 10 + step, 0.1f);
    AdamWStep s;
    s.lr = 1e-3;
    s.weight_decay = 0.1;
    s.step = step;
    s.grad_scale = 0.5;
    adamw_update(param.data(), grad.data(), m.data(), v.data(), n, s);
    const AdamWScalars a = adamw_scalars(s, s.weight_decay);
    Tensor g_grad = upload<float>(ctx, grad);
    cuda::adamw_update(ptr<float>(g_param), ptr<__nv_bfloat16>(g_copy), ptr<float>(g_grad), ptr<float>(g_m),
                       ptr<float>(g_v), n, a, ctx.compute());
  }
  check_close("param", download(ctx, g_param), param, kFp32Tolerance);
  check_close("exp_avg", download(ctx, g_m), m, kFp32Tolerance);
  check_close("exp_avg_sq", download(ctx, g_v), v, kFp32Tolerance);
  check_close("bf16 copy", download(ctx, g_copy), rounded<__nv_bfloat16>(download(ctx, g_param)), 0.0);
}

TEST_CASE("CUDA squared norm matches a double sum and repeats bitwise", "[gpu][optim]") {
  TESSEL_REQUIRE_GPU();
  cuda::DeviceContext ctx(0);
  const int64_t n = 3000017;
  auto x = random_vector(n, 20);
  double want = 0.0;
  for (float f : x) want += double(f) * f;
  Tensor g_x = upload<float>(ctx, x), g_out = ctx.empty({1}, DType::F32);
  Tensor g_partials = ctx.empty({cuda::global_norm_partials()}, DType::F32);
  cuda::sum_squares(ptr<float>(g_out), ptr<float>(g_partials), ptr<float>(g_x), n, ctx.compute());
  const float first = download(ctx, g_out)[0];
  CHECK(std::fabs(first - want) / want < 1e-5);
  cuda::sum_squares(ptr<float>(g_out), ptr<float>(g_partials), ptr<float>(g_x), n, ctx.compute());
  const float second = download(ctx, g_out)[0];
  CHECK(std::memcmp(&first, &second, sizeof(float)) == 0);
}

TEST_CASE("CUDA non-finite check flags one inf or nan among millions", "[gpu][optim]") {
  TESSEL_REQUIRE_GPU();
  cuda::DeviceContext ctx(0);
  const int64_t n = 2000000;
  auto x = random_vector(n, 30);
  Tensor g_flag = ctx.zeros({1}, DType::I32);
  Tensor g_x = upload<float>(ctx, x);
  cuda::find_nonfinite(ptr<int>(g_flag), ptr<float>(g_x), n, ctx.compute());
  CHECK(ctx.to_host(g_flag).data<int32_t>()[0] == 0);
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    x[1234567] = bad;
    g_x = upload<float>(ctx, x);
    g_flag = ctx.zeros({1}, DType::I32);
    cuda::find_nonfinite(ptr<int>(g_flag), ptr<float>(g_x), n, ctx.compute());
    CHECK(ctx.to_host(g_flag).data<int32_t>()[0] == 1);
  }
}

#else

TEST_CASE("CUDA optimizer cases need a build with the CUDA toolkit", "[gpu]") {
  WARN("skipped: this build has no CUDA backend (nvcc was not found at configure time)");
}

#endif  // TESSEL_HAVE_CUDA

// Every CUDA launcher against the CPU reference on the same (storage-rounded) inputs, forward
// and backward, in fp32 and bf16 ([gpu]: skipped with a message where there is no GPU).
// Sizes cross the kernels' internal boundaries: attention's 32-row chunks, the classifier's
// 512-row chunks, the column sums' 256-row chunks and 32-column tiles, the row kernels' vector
// widths and warp/block split, column blocks of wider buffers, vocab shards.
#include <catch2/catch.hpp>

#ifdef TESSEL_HAVE_CUDA

#include <cstring>

#include "core/config/config.h"
#include "core/kernels/cpu/cpu_kernels.h"
#include "core/kernels/cpu/row_reduce.h"
#include "core/kernels/cuda/cuda_kernels.h"
#include "core/model/transformer.h"
#include "core/ops.h"
#include "tests/core/kernels/cuda_parity.h"
#include "tests/core/kernels/gradient_check.h"

using namespace tessel;
using namespace tessel::testing;
using cuda::DeviceContext;

namespace {

std::vector<float> zeros(size_t n) { return std::vector<float>(n, 0.0f); }

// Scratch for a launcher's column sums (cuda_kernels.h): `sums` gradients summed over N rows of
// C columns, filled with NaN so that a partial sum the kernels fail to write shows in the
// gradient. Null when the rows fit one chunk.
struct ColumnScratch {
  Tensor tensor;
  float* ptr = nullptr;
  int64_t floats = 0;
};

ColumnScratch column_scratch(DeviceContext& ctx, int sums, int64_t N, int64_t C) {
  ColumnScratch s;
  s.floats = sums * cuda::column_sum_scratch_floats(N, C);
  if (s.floats > 0) {
    s.tensor = upload<float>(ctx, std::vector<float>(static_cast<size_t>(s.floats), std::nanf("")), true);
    s.ptr = ptr<float>(s.tensor);
  }
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("CUDA MoE permutation matches the CPU: gather, ordered scatter-add, row dots", "[gpu][kernels][moe]",
                   float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // 70 tokens, top-3 of 5 experts: 210 expert-major rows (each token's rows spread over the
  // list, some tokens with fewer after drops), C 300 across the 256-thread blocks.
  const int64_t N = 70, C = 300;
  std::vector<int32_t> rows;
  for (int64_t e = 0; e < 5; ++e) {
    for (int64_t t = 0; t < N; ++t) {
      if ((t + e) % 5 < 3 && (t * 7 + e) % 11 != 0) rows.push_back(static_cast<int32_t>(t));
    }
  }
  const int64_t M = static_cast<int64_t>(rows.size());
  const auto inp = rounded<TestType>(random_vector(N * C, 201)), perm = rounded<TestType>(random_vector(M * C, 202));
  const auto base = rounded<TestType>(random_vector(N * C, 203));
  const std::vector<float> scale = random_vector(M, 204);
  Tensor g_rows = upload_tokens(ctx, rows), g_scale = upload<TestType>(ctx, scale, true);
  {
    std::vector<float> out(M * C);
    cpu::moe_gather_rows(out.data(), inp.data(), rows.data(), scale.data(), M, C);
    Tensor g_out = ctx.empty({M * C}, storage_dtype<TestType>());
    cuda::moe_gather_rows(ptr<TestType>(g_out), ptr<TestType>(upload<TestType>(ctx, inp)), ptr<int32_t>(g_rows),
                          ptr<float>(g_scale), M, C, ctx.compute());
    check_close("moe_gather_rows", download(ctx, g_out), out, tolerance<TestType>());
  }
  {
    std::vector<float> out = base;
    cpu::moe_scatter_add_rows(out.data(), perm.data(), rows.data(), scale.data(), M, C);
    Tensor g_out = upload<TestType>(ctx, base);
    cuda::moe_scatter_add_rows(ptr<TestType>(g_out), ptr<TestType>(upload<TestType>(ctx, perm)), ptr<int32_t>(g_rows),
                               ptr<float>(g_scale), N, M, C, ctx.compute());
    const std::vector<float> got = download(ctx, g_out);
    check_close("moe_scatter_add_rows", got, out, tolerance<TestType>());
    // The same rows in the same order: fp32 gives the CPU's bits, and every run the same.
    if (std::is_same<TestType, float>::value) CHECK(got == out);
  }
  {
    std::vector<float> out(M);
    cpu::moe_row_dots(out.data(), perm.data(), inp.data(), rows.data(), M, C);
    Tensor g_out = ctx.empty({M}, DType::F32);
    cuda::moe_row_dots(ptr<float>(g_out), ptr<TestType>(upload<TestType>(ctx, perm)),
                       ptr<TestType>(upload<TestType>(ctx, inp)), ptr<int32_t>(g_rows), M, C, ctx.compute());
    check_close("moe_row_dots", download(ctx, g_out), out, kFp32Tolerance);
  }
}

TEMPLATE_TEST_CASE("CUDA embedding matches the CPU, vocab shard and positions included", "[gpu][kernels]", float,
                   __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t B = 3, T = 5, C = 40, V = 11, start = 4, rows = 5;  // shard [4, 9) of 11
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < B * T; ++i) tokens.push_back(static_cast<int32_t>((i * 7) % V));
  auto wte = rounded<TestType>(random_vector(rows * C, 1)), wpe = rounded<TestType>(random_vector(T * C, 2));
  auto dout = rounded<TestType>(random_vector(B * T * C, 3));
  std::vector<float> out(B * T * C), dwte = random_vector(rows * C, 4), dwpe = random_vector(T * C, 5);
  Tensor g_tokens = upload_tokens(ctx, tokens), g_wte = upload<TestType>(ctx, wte), g_wpe = upload<TestType>(ctx, wpe);
  Tensor g_out = ctx.empty({B * T * C}, storage_dtype<TestType>()), g_dout = upload<TestType>(ctx, dout);
  Tensor g_dwte = upload<TestType>(ctx, dwte, true), g_dwpe = upload<TestType>(ctx, dwpe, true);
  cpu::embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C, start, rows);
  cpu::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C, start, rows);
  cuda::embedding_forward(ptr<TestType>(g_out), ptr<int32_t>(g_tokens), ptr<TestType>(g_wte), ptr<TestType>(g_wpe), B,
                          T, C, start, rows, ctx.compute());
  const ColumnScratch scratch = column_scratch(ctx, 1, B, T * C);
  cuda::embedding_backward(ptr<float>(g_dwte), ptr<float>(g_dwpe), ptr<TestType>(g_dout), ptr<int32_t>(g_tokens), B, T,
                           C, start, rows, scratch.ptr, scratch.floats, ctx.compute());
  check_close("out", download(ctx, g_out), out, tolerance<TestType>());
  // Gradients are fp32 sums of T-stored values: fp32 tolerance whatever T is.
  check_close("dwte (accumulated)", download(ctx, g_dwte), dwte, kFp32Tolerance);
  check_close("dwpe (accumulated)", download(ctx, g_dwpe), dwpe, kFp32Tolerance);
}

TEMPLATE_TEST_CASE("CUDA LayerNorm and RMSNorm match the CPU, forward and backward", "[gpu][kernels]", float,
                   __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t N = 37, C = 300;  // C not a multiple of the block: the strided loops' tails
  auto inp = rounded<TestType>(random_vector(N * C, 10, 2.0f)), w = rounded<TestType>(random_vector(C, 11));
  auto b = rounded<TestType>(random_vector(C, 12)), dout = rounded<TestType>(random_vector(N * C, 13));
  auto dinp0 = rounded<TestType>(random_vector(N * C, 14));  // the residual's pass-through: norms add to it
  const DType st = storage_dtype<TestType>();
  Tensor g_inp = upload<TestType>(ctx, inp), g_w = upload<TestType>(ctx, w), g_b = upload<TestType>(ctx, b);
  Tensor g_dout = upload<TestType>(ctx, dout);
  {
    std::vector<float> out(N * C), mean(N), rstd(N), dinp = dinp0, dw = random_vector(C, 15), db = random_vector(C, 16);
    Tensor g_out = ctx.empty({N * C}, st), g_mean = ctx.empty({N}, DType::F32), g_rstd = ctx.empty({N}, DType::F32);
    Tensor g_dinp = upload<TestType>(ctx, dinp), g_dw = upload<TestType>(ctx, dw, true),
           g_db = upload<TestType>(ctx, db, true);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C, 1e-5f);
    cpu::layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), mean.data(),
                            rstd.data(), N, C);
    cuda::layernorm_forward(ptr<TestType>(g_out), ptr<float>(g_mean), ptr<float>(g_rstd), ptr<TestType>(g_inp),
                            ptr<TestType>(g_w), ptr<TestType>(g_b), N, C, 1e-5f, ctx.compute());
    const ColumnScratch scratch = column_scratch(ctx, 2, N, C);
    cuda::layernorm_backward(ptr<TestType>(g_dinp), ptr<float>(g_dw), ptr<float>(g_db), ptr<TestType>(g_dout),
                             ptr<TestType>(g_inp), ptr<TestType>(g_w), ptr<float>(g_mean), ptr<float>(g_rstd), N, C,
                             scratch.ptr, scratch.floats, ctx.compute());
    check_close("layernorm out", download(ctx, g_out), out, tolerance<TestType>());
    check_close("layernorm mean", download(ctx, g_mean), mean, kFp32Tolerance);
    check_close("layernorm rstd", download(ctx, g_rstd), rstd, kFp32Tolerance);
    check_close("layernorm dinp", download(ctx, g_dinp), dinp, tolerance<TestType>());
    check_close("layernorm dweight", download(ctx, g_dw), dw, kFp32Tolerance);
    check_close("layernorm dbias", download(ctx, g_db), db, kFp32Tolerance);
  }
  {
    std::vector<float> out(N * C), rstd(N), dinp = dinp0, dw = random_vector(C, 17);
    Tensor g_out = ctx.empty({N * C}, st), g_rstd = ctx.empty({N}, DType::F32);
    Tensor g_dinp = upload<TestType>(ctx, dinp), g_dw = upload<TestType>(ctx, dw, true);
    cpu::rmsnorm_forward(out.data(), rstd.data(), inp.data(), w.data(), N, C, 1e-6f);
    cpu::rmsnorm_backward(dinp.data(), dw.data(), dout.data(), inp.data(), w.data(), rstd.data(), N, C);
    cuda::rmsnorm_forward(ptr<TestType>(g_out), ptr<float>(g_rstd), ptr<TestType>(g_inp), ptr<TestType>(g_w), N, C,
                          1e-6f, ctx.compute());
    const ColumnScratch scratch = column_scratch(ctx, 1, N, C);
    cuda::rmsnorm_backward(ptr<TestType>(g_dinp), ptr<float>(g_dw), ptr<TestType>(g_dout), ptr<TestType>(g_inp),
                           ptr<TestType>(g_w), ptr<float>(g_rstd), N, C, scratch.ptr, scratch.floats, ctx.compute());
    check_close("rmsnorm out", download(ctx, g_out), out, tolerance<TestType>());
    check_close("rmsnorm rstd", download(ctx, g_rstd), rstd, kFp32Tolerance);
    check_close("rmsnorm dinp", download(ctx, g_dinp), dinp, tolerance<TestType>());
    check_close("rmsnorm dweight", download(ctx, g_dw), dw, kFp32Tolerance);
  }
}

namespace {

// LayerNorm and RMSNorm, forward and backward, on N rows of C channels against the CPU. With
// `offset` 1 the activations (inp, out, dout, dinp) start one element into their buffers, where
// no 16-byte access may read them: the row kernels must see it and take their scalar path.
template <typename T>
void check_norms(DeviceContext& ctx, int64_t N, int64_t C, int64_t offset) {
  INFO("N " << N << " C " << C << " offset " << offset);
  const size_t n = static_cast<size_t>(N * C);
  auto inp = rounded<T>(random_vector(n, 110, 2.0f)), w = rounded<T>(random_vector(C, 111));
  auto b = rounded<T>(random_vector(C, 112)), dout = rounded<T>(random_vector(n, 113));
  auto dinp0 = rounded<T>(random_vector(n, 114));  // the residual's pass-through: norms add to it
  // A device copy of an activation after `offset` leading elements, and back.
  auto up = [&](const std::vector<float>& v) {
    std::vector<float> padded(static_cast<size_t>(offset), 0.0f);
    padded.insert(padded.end(), v.begin(), v.end());
    return upload<T>(ctx, padded);
  };
  auto down = [&](const Tensor& t) {
    const std::vector<float> all = download(ctx, t);
    return std::vector<float>(all.begin() + offset, all.end());
  };
  auto at = [&](const Tensor& t) { return ptr<T>(t) + offset; };
  Tensor g_inp = up(inp), g_dout = up(dout), g_w = upload<T>(ctx, w), g_b = upload<T>(ctx, b);
  {
    std::vector<float> out(n), mean(N), rstd(N), dinp = dinp0, dw = random_vector(C, 115), db = random_vector(C, 116);
    Tensor g_out = up(zeros(n)), g_mean = ctx.empty({N}, DType::F32), g_rstd = ctx.empty({N}, DType::F32);
    Tensor g_dinp = up(dinp0), g_dw = upload<T>(ctx, dw, true), g_db = upload<T>(ctx, db, true);
    const ColumnScratch scratch = column_scratch(ctx, 2, N, C);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C, 1e-5f);
    cpu::layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), mean.data(),
                            rstd.data(), N, C);
    cuda::layernorm_forward(at(g_out), ptr<float>(g_mean), ptr<float>(g_rstd), at(g_inp), ptr<T>(g_w), ptr<T>(g_b), N,
                            C, 1e-5f, ctx.compute());
    cuda::layernorm_backward(at(g_dinp), ptr<float>(g_dw), ptr<float>(g_db), at(g_dout), at(g_inp), ptr<T>(g_w),
                             ptr<float>(g_mean), ptr<float>(g_rstd), N, C, scratch.ptr, scratch.floats, ctx.compute());
    check_close("layernorm out", down(g_out), out, tolerance<T>());
    check_close("layernorm mean", download(ctx, g_mean), mean, kFp32Tolerance);
    check_close("layernorm rstd", download(ctx, g_rstd), rstd, kFp32Tolerance);
    check_close("layernorm dinp (accumulated)", down(g_dinp), dinp, tolerance<T>());
    check_close("layernorm dweight (accumulated)", download(ctx, g_dw), dw, kFp32Tolerance);
    check_close("layernorm dbias (accumulated)", download(ctx, g_db), db, kFp32Tolerance);
  }
  {
    std::vector<float> out(n), rstd(N), dinp = dinp0, dw = random_vector(C, 117);
    Tensor g_out = up(zeros(n)), g_rstd = ctx.empty({N}, DType::F32);
    Tensor g_dinp = up(dinp0), g_dw = upload<T>(ctx, dw, true);
    const ColumnScratch scratch = column_scratch(ctx, 1, N, C);
    cpu::rmsnorm_forward(out.data(), rstd.data(), inp.data(), w.data(), N, C, 1e-6f);
    cpu::rmsnorm_backward(dinp.data(), dw.data(), dout.data(), inp.data(), w.data(), rstd.data(), N, C);
    cuda::rmsnorm_forward(at(g_out), ptr<float>(g_rstd), at(g_inp), ptr<T>(g_w), N, C, 1e-6f, ctx.compute());
    cuda::rmsnorm_backward(at(g_dinp), ptr<float>(g_dw), at(g_dout), at(g_inp), ptr<T>(g_w), ptr<float>(g_rstd), N, C,
                           scratch.ptr, scratch.floats, ctx.compute());
    check_close("rmsnorm out", down(g_out), out, tolerance<T>());
    check_close("rmsnorm rstd", download(ctx, g_rstd), rstd, kFp32Tolerance);
    check_close("rmsnorm dinp (accumulated)", down(g_dinp), dinp, tolerance<T>());
    check_close("rmsnorm dweight (accumulated)", download(ctx, g_dw), dw, kFp32Tolerance);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("CUDA LayerNorm and RMSNorm match the CPU across row chunks, column tiles and vector widths",
                   "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // Rows: one, and across the column sums' 256-row chunks (257, 1000, 4099: a partial last one).
  // Channels: under a warp, past a 32-column tile, a multiple of both vector widths (768), of
  // neither (7, 33, 1030), a row a block of several warps holds (2048), and rows longer than
  // any row kernel holds (2049, 8200: the block-per-row kernels).
  const int64_t shapes[][2] = {{1, 7},     {1, 1030},   {257, 33},   {257, 768}, {1000, 7}, {1000, 1030},
                               {4099, 33}, {4099, 768}, {300, 2048}, {3, 2049},  {3, 8200}};
  for (const auto& s : shapes) check_norms<TestType>(ctx, s[0], s[1], 0);
}

TEMPLATE_TEST_CASE("CUDA norms and GELU take the scalar path on rows not 16-byte aligned and match the CPU",
                   "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // 768 channels would take the 16-byte path; one element in, every row is misaligned.
  check_norms<TestType>(ctx, 5, 768, 1);
  check_norms<TestType>(ctx, 300, 2048, 1);
  const int64_t n = 4099;
  auto inp = rounded<TestType>(random_vector(n, 120, 3.0f)), dout = rounded<TestType>(random_vector(n, 121));
  std::vector<float> out(n), dinp(n);
  cpu::gelu_forward(out.data(), inp.data(), n);
  cpu::gelu_backward(dinp.data(), inp.data(), dout.data(), n);
  auto padded = [](std::vector<float> v) {
    v.insert(v.begin(), 0.0f);
    return v;
  };
  Tensor g_inp = upload<TestType>(ctx, padded(inp)), g_dout = upload<TestType>(ctx, padded(dout));
  Tensor g_out = upload<TestType>(ctx, zeros(n + 1)), g_dinp = upload<TestType>(ctx, zeros(n + 1));
  cuda::gelu_forward(ptr<TestType>(g_out) + 1, ptr<TestType>(g_inp) + 1, n, ctx.compute());
  cuda::gelu_backward(ptr<TestType>(g_dinp) + 1, ptr<TestType>(g_inp) + 1, ptr<TestType>(g_dout) + 1, n, ctx.compute());
  std::vector<float> got = download(ctx, g_out), dgot = download(ctx, g_dinp);
  CHECK(got[0] == 0.0f);  // the element before the first is not written
  CHECK(dgot[0] == 0.0f);
  check_close("gelu out (unaligned)", std::vector<float>(got.begin() + 1, got.end()), out, tolerance<TestType>());
  check_close("gelu dinp (unaligned)", std::vector<float>(dgot.begin() + 1, dgot.end()), dinp, tolerance<TestType>());
}

TEMPLATE_TEST_CASE("CUDA bias and position gradients match the CPU across row chunks and column tiles",
                   "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // bias_backward on columns [3, 3 + OC) of rows `ld` wide (a block of a wider output).
  for (const int64_t N : {1, 256, 257, 1000, 4099}) {
    for (const int64_t OC : {7, 33, 768, 1030}) {
      INFO("bias_backward N " << N << " OC " << OC);
      const int64_t ld = OC + 5, first = 3;
      auto dout = rounded<TestType>(random_vector(N * ld, 130));
      std::vector<float> db = random_vector(OC, 131);
      Tensor g_dout = upload<TestType>(ctx, dout), g_db = upload<TestType>(ctx, db, true);
      const ColumnScratch scratch = column_scratch(ctx, 1, N, OC);
      cpu::add_column_sums(db.data(), dout.data() + first, N, OC, ld);
      cuda::bias_backward(ptr<float>(g_db), ptr<TestType>(g_dout) + first, ld, N, OC, scratch.ptr, scratch.floats,
                          ctx.compute());
      check_close("dbias (accumulated)", download(ctx, g_db), db, kFp32Tolerance);
    }
  }
  // dwpe[t] = Σ_b dout[b, t]: a column sum over B rows of T·C columns.
  const int64_t T = 3, C = 33, V = 50;
  for (const int64_t B : {1, 257, 600}) {
    INFO("embedding_backward B " << B);
    std::vector<int32_t> tokens;
    for (int64_t i = 0; i < B * T; ++i) tokens.push_back(static_cast<int32_t>((i * 7) % V));
    auto dout = rounded<TestType>(random_vector(B * T * C, 132));
    std::vector<float> dwte = random_vector(V * C, 133), dwpe = random_vector(T * C, 134);
    Tensor g_tokens = upload_tokens(ctx, tokens), g_dout = upload<TestType>(ctx, dout);
    Tensor g_dwte = upload<TestType>(ctx, dwte, true), g_dwpe = upload<TestType>(ctx, dwpe, true);
    const ColumnScratch scratch = column_scratch(ctx, 1, B, T * C);
    cpu::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C, 0, V);
    cuda::embedding_backward(ptr<float>(g_dwte), ptr<float>(g_dwpe), ptr<TestType>(g_dout), ptr<int32_t>(g_tokens), B,
                             T, C, 0, V, scratch.ptr, scratch.floats, ctx.compute());
    check_close("dwte (accumulated)", download(ctx, g_dwte), dwte, kFp32Tolerance);
    check_close("dwpe (accumulated)", download(ctx, g_dwpe), dwpe, kFp32Tolerance);
  }
}

TEMPLATE_TEST_CASE("CUDA GELU, SwiGLU and residual match the CPU", "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t N = 19, F = 77, n = N * 2 * F;
  const DType st = storage_dtype<TestType>();
  auto inp = rounded<TestType>(random_vector(n, 20, 3.0f)), dout = rounded<TestType>(random_vector(n, 21));
  Tensor g_inp = upload<TestType>(ctx, inp), g_dout = upload<TestType>(ctx, dout);
  std::vector<float> out(n), dinp(n);
  Tensor g_out = ctx.empty({n}, st), g_dinp = ctx.empty({n}, st);
  cpu::gelu_forward(out.data(), inp.data(), n);
  cpu::gelu_backward(dinp.data(), inp.data(), dout.data(), n);
  cuda::gelu_forward(ptr<TestType>(g_out), ptr<TestType>(g_inp), n, ctx.compute());
  cuda::gelu_backward(ptr<TestType>(g_dinp), ptr<TestType>(g_inp), ptr<TestType>(g_dout), n, ctx.compute());
  check_close("gelu out", download(ctx, g_out), out, tolerance<TestType>());
  check_close("gelu dinp", download(ctx, g_dinp), dinp, tolerance<TestType>());

  std::vector<float> sw_out(N * F), sw_dinp(n);
  Tensor g_sw_out = ctx.empty({N * F}, st), g_sw_dinp = ctx.empty({n}, st);
  cpu::swiglu_forward(sw_out.data(), inp.data(), N, F);
  cpu::swiglu_backward(sw_dinp.data(), inp.data(), dout.data(), N, F);
  cuda::swiglu_forward(ptr<TestType>(g_sw_out), ptr<TestType>(g_inp), N, F, ctx.compute());
  cuda::swiglu_backward(ptr<TestType>(g_sw_dinp), ptr<TestType>(g_inp), ptr<TestType>(g_dout), N, F, ctx.compute());
  check_close("swiglu out", download(ctx, g_sw_out), sw_out, tolerance<TestType>());
  check_close("swiglu dinp", download(ctx, g_sw_dinp), sw_dinp, tolerance<TestType>());

  std::vector<float> sum(n);
  cpu::residual_forward(sum.data(), inp.data(), dout.data(), n);
  cuda::residual_forward(ptr<TestType>(g_inp), ptr<TestType>(g_inp), ptr<TestType>(g_dout), n,
                         ctx.compute());  // aliased
  check_close("residual (out aliasing a)", download(ctx, g_inp), sum, tolerance<TestType>());
}

TEMPLATE_TEST_CASE("CUDA RoPE matches the CPU forward and backward on the q and k heads of a qkv row", "[gpu][kernels]",
                   float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t B = 2, T = 300, H = 4, KV = 2, D = 16, ld = (H + 2 * KV) * D;
  auto x = rounded<TestType>(random_vector(B * T * ld, 30));
  std::vector<float> fwd = x, bwd = x;
  Tensor g_fwd = upload<TestType>(ctx, x), g_bwd = upload<TestType>(ctx, x);
  cpu::rope_forward(fwd.data(), ld, B, T, H + KV, D, 10000.0f);  // q and k heads, v untouched
  cpu::rope_backward(bwd.data(), ld, B, T, H + KV, D, 10000.0f);
  cuda::rope_forward(ptr<TestType>(g_fwd), ld, B, T, H + KV, D, 10000.0f, ctx.compute());
  cuda::rope_backward(ptr<TestType>(g_bwd), ld, B, T, H + KV, D, 10000.0f, ctx.compute());
  check_close("rope forward", download(ctx, g_fwd), fwd, tolerance<TestType>());
  check_close("rope backward", download(ctx, g_bwd), bwd, tolerance<TestType>());
}

TEMPLATE_TEST_CASE("CUDA attention matches the CPU with grouped-query heads, forward and backward", "[gpu][kernels]",
                   float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // (T, H, KV, D): T crosses the 32-row chunks; D below, at and above one lane's worth.
  const int64_t shapes[][4] = {{37, 4, 2, 16}, {70, 6, 6, 64}, {33, 8, 2, 128}};
  for (const auto& s : shapes) {
    const int64_t B = 2, T = s[0], H = s[1], KV = s[2], D = s[3], ld = (H + 2 * KV) * D;
    INFO("T " << T << " H " << H << " KV " << KV << " D " << D);
    const DType st = storage_dtype<TestType>();
    auto qkv = rounded<TestType>(random_vector(B * T * ld, 40));
    auto dout = rounded<TestType>(random_vector(B * T * H * D, 41));
    std::vector<float> out(B * T * H * D), lse(B * H * T), dqkv(B * T * ld);
    cpu::attention_forward(out.data(), lse.data(), qkv.data(), B, T, H, KV, D);
    // The CPU backward reads the output the device will read: the stored (rounded) one.
    std::vector<float> out_stored = rounded<TestType>(out);
    cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), out_stored.data(), lse.data(), B, T, H, KV, D);
    Tensor g_qkv = upload<TestType>(ctx, qkv), g_dout = upload<TestType>(ctx, dout);
    Tensor g_out = ctx.empty({B * T * H * D}, st), g_lse = ctx.empty({B * H * T}, DType::F32);
    Tensor g_dqkv = ctx.empty({B * T * ld}, st), g_delta = ctx.empty({B * H * T}, DType::F32);
    cuda::attention_forward(ptr<TestType>(g_out), ptr<float>(g_lse), ptr<TestType>(g_qkv), B, T, H, KV, D,
                            ctx.compute());
    cuda::attention_backward(ptr<TestType>(g_dqkv), ptr<float>(g_delta), ptr<TestType>(g_dout), ptr<TestType>(g_qkv),
                             ptr<TestType>(g_out), ptr<float>(g_lse), B, T, H, KV, D, ctx.compute());
    check_close("attention out", download(ctx, g_out), out, tolerance<TestType>());
    check_close("attention lse", download(ctx, g_lse), lse, kFp32Tolerance);
    const std::vector<float> first = download(ctx, g_dqkv);
    check_close("attention dqkv", first, dqkv, tolerance<TestType>());
    // No atomics: a second backward is bitwise the first.
    cuda::attention_backward(ptr<TestType>(g_dqkv), ptr<float>(g_delta), ptr<TestType>(g_dout), ptr<TestType>(g_qkv),
                             ptr<TestType>(g_out), ptr<float>(g_lse), B, T, H, KV, D, ctx.compute());
    const std::vector<float> second = download(ctx, g_dqkv);
    CHECK(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
  }
}

namespace {

// One attention shape's inputs, rounded to the storage type T, and the CPU's results on them.
struct AttentionCase {
  int64_t B, T, H, KV, D;
  std::vector<float> qkv, dout, out, lse, dqkv;  // (B*T, ld), (B*T, H*D), (B*T, H*D), (B, H, T), (B*T, ld)
  int64_t ld() const { return (H + 2 * KV) * D; }
};

template <typename T>
AttentionCase attention_case(int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D) {
  AttentionCase c{B, T_, H, KV, D, {}, {}, {}, {}, {}};
  c.qkv = rounded<T>(random_vector(B * T_ * c.ld(), 40));
  c.dout = rounded<T>(random_vector(B * T_ * H * D, 41));
  c.out.resize(B * T_ * H * D);
  c.lse.resize(B * H * T_);
  c.dqkv.resize(B * T_ * c.ld());
  cpu::attention_forward(c.out.data(), c.lse.data(), c.qkv.data(), B, T_, H, KV, D);
  // The CPU backward reads the output the device will read: the stored (rounded) one.
  const std::vector<float> out_stored = rounded<T>(c.out);
  cpu::attention_backward(c.dqkv.data(), c.dout.data(), c.qkv.data(), out_stored.data(), c.lse.data(), B, T_, H, KV, D);
  return c;
}

std::vector<float> nans(size_t n) { return std::vector<float>(n, std::nanf("")); }

// The device's bytes of t, for bitwise comparisons.
std::vector<unsigned char> bytes(DeviceContext& ctx, const Tensor& t) {
  Tensor host = ctx.to_host(t);
  const auto* p = static_cast<const unsigned char*>(host.raw());
  return std::vector<unsigned char>(p, p + host.nbytes());
}

}  // namespace

TEMPLATE_TEST_CASE(
    "CUDA flash attention matches the CPU across its tile edges, grouped-query and plain heads, "
    "forward and backward",
    "[gpu][kernels]", __nv_bfloat16, __half) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // T against the tiles (forward 128 query rows x 64 keys; backward 64 x 64, 64 x 32 at D =
  // 128): a single row, one short of and one past a 64-row tile, past two, past four.
  const int64_t heads[][2] = {{4, 2}, {4, 4}};  // (H, KV): grouped-query, then one kv head per query head
  for (const int64_t T : {1, 63, 65, 130, 257})
    for (const auto& hk : heads)
      for (const int64_t D : {64, 128}) {
        const int64_t B = 2, H = hk[0], KV = hk[1];
        INFO("T " << T << " H " << H << " KV " << KV << " D " << D);
        const AttentionCase c = attention_case<TestType>(B, T, H, KV, D);
        const DType st = storage_dtype<TestType>();
        Tensor g_qkv = upload<TestType>(ctx, c.qkv), g_dout = upload<TestType>(ctx, c.dout);
        Tensor g_out = ctx.empty({B * T * H * D}, st), g_lse = ctx.empty({B * H * T}, DType::F32);
        // NaN-filled: an element the backward leaves unwritten fails check_close's finiteness check.
        Tensor g_dqkv = upload<TestType>(ctx, nans(c.dqkv.size())), g_delta = ctx.empty({B * H * T}, DType::F32);
        cuda::flash_attention_forward(ptr<TestType>(g_out), ptr<float>(g_lse), ptr<TestType>(g_qkv), B, T, H, KV, D,
                                      ctx.compute());
        cuda::flash_attention_backward(ptr<TestType>(g_dqkv), ptr<float>(g_delta), ptr<TestType>(g_dout),
                                       ptr<TestType>(g_qkv), ptr<TestType>(g_out), ptr<float>(g_lse), B, T, H, KV, D,
                                       ctx.compute());
        check_close("flash attention out", download(ctx, g_out), c.out, tolerance<TestType>());
        // Scores are fp32 sums of exact 16-bit products: the logsumexp keeps fp32 accuracy.
        check_close("flash attention lse", download(ctx, g_lse), c.lse, kFp32Tolerance);
        check_close("flash attention dqkv (dq, dk, dv overwritten)", download(ctx, g_dqkv), c.dqkv,
                    tolerance<TestType>());
      }
}

TEMPLATE_TEST_CASE("CUDA flash attention backward is bitwise repeatable: no atomics, sums in a fixed order",
                   "[gpu][kernels]", __nv_bfloat16, __half) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  for (const int64_t D : {64, 128}) {
    // Grouped-query heads: dK and dV sum over two query heads each.
    const int64_t B = 2, T = 257, H = 4, KV = 2;
    INFO("D " << D);
    const AttentionCase c = attention_case<TestType>(B, T, H, KV, D);
    const DType st = storage_dtype<TestType>();
    Tensor g_qkv = upload<TestType>(ctx, c.qkv), g_dout = upload<TestType>(ctx, c.dout);
    Tensor g_out = ctx.empty({B * T * H * D}, st), g_lse = ctx.empty({B * H * T}, DType::F32);
    Tensor g_delta = ctx.empty({B * H * T}, DType::F32);
    cuda::flash_attention_forward(ptr<TestType>(g_out), ptr<float>(g_lse), ptr<TestType>(g_qkv), B, T, H, KV, D,
                                  ctx.compute());
    // Different starting contents: the result may depend on neither.
    Tensor first = upload<TestType>(ctx, nans(c.dqkv.size()));
    Tensor second = upload<TestType>(ctx, std::vector<float>(c.dqkv.size(), 3.0f));
    for (const Tensor* dqkv : {&first, &second})
      cuda::flash_attention_backward(ptr<TestType>(*dqkv), ptr<float>(g_delta), ptr<TestType>(g_dout),
                                     ptr<TestType>(g_qkv), ptr<TestType>(g_out), ptr<float>(g_lse), B, T, H, KV, D,
                                     ctx.compute());
    CHECK(bytes(ctx, first) == bytes(ctx, second));
    check_close("flash attention dqkv", download(ctx, first), c.dqkv, tolerance<TestType>());
  }
}

TEMPLATE_TEST_CASE("CUDA flash attention matches the reference CUDA kernel on the same inputs", "[gpu][kernels]",
                   __nv_bfloat16, __half) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  for (const int64_t D : {64, 128}) {
    const int64_t B = 2, T = 300, H = 8, KV = 2, ld = (H + 2 * KV) * D;
    INFO("D " << D);
    const DType st = storage_dtype<TestType>();
    Tensor g_qkv = upload<TestType>(ctx, rounded<TestType>(random_vector(B * T * ld, 42)));
    Tensor g_dout = upload<TestType>(ctx, rounded<TestType>(random_vector(B * T * H * D, 43)));
    Tensor ref_out = ctx.empty({B * T * H * D}, st), ref_lse = ctx.empty({B * H * T}, DType::F32);
    Tensor out = ctx.empty({B * T * H * D}, st), lse = ctx.empty({B * H * T}, DType::F32);
    Tensor ref_dqkv = ctx.empty({B * T * ld}, st), dqkv = ctx.empty({B * T * ld}, st);
    Tensor delta = ctx.empty({B * H * T}, DType::F32);
    cuda::attention_forward(ptr<TestType>(ref_out), ptr<float>(ref_lse), ptr<TestType>(g_qkv), B, T, H, KV, D,
                            ctx.compute());
    cuda::flash_attention_forward(ptr<TestType>(out), ptr<float>(lse), ptr<TestType>(g_qkv), B, T, H, KV, D,
                                  ctx.compute());
    // Both backwards read the reference's forward, so they differ only in their own arithmetic.
    cuda::attention_backward(ptr<TestType>(ref_dqkv), ptr<float>(delta), ptr<TestType>(g_dout), ptr<TestType>(g_qkv),
                             ptr<TestType>(ref_out), ptr<float>(ref_lse), B, T, H, KV, D, ctx.compute());
    cuda::flash_attention_backward(ptr<TestType>(dqkv), ptr<float>(delta), ptr<TestType>(g_dout), ptr<TestType>(g_qkv),
                                   ptr<TestType>(ref_out), ptr<float>(ref_lse), B, T, H, KV, D, ctx.compute());
    check_close("out, flash vs reference", download(ctx, out), download(ctx, ref_out), tolerance<TestType>());
    check_close("lse, flash vs reference", download(ctx, lse), download(ctx, ref_lse), kFp32Tolerance);
    check_close("dqkv, flash vs reference", download(ctx, dqkv), download(ctx, ref_dqkv), tolerance<TestType>());
  }
}

TEST_CASE(
    "DeviceContext runs the flash attention kernel only when chosen, and only for 16-bit storage and its head "
    "dims",
    "[gpu][kernels]") {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  CHECK(ctx.attention_kernel() == cuda::AttentionKernel::kReference);
  const int64_t B = 2, T = 70, H = 4, KV = 2;
  // Attention forward and backward on fixed inputs, through the context (direct = false) or
  // straight to one launcher pair; returns the bytes of out, lse and dqkv.
  auto run = [&](DType dtype, int64_t D, bool direct, bool flash) {
    const int64_t ld = (H + 2 * KV) * D;
    auto up = [&](const std::vector<float>& v) {
      return dtype == DType::F32 ? upload<float>(ctx, v) : upload<__nv_bfloat16>(ctx, rounded<__nv_bfloat16>(v));
    };
    Tensor qkv = up(random_vector(B * T * ld, 44)), dout = up(random_vector(B * T * H * D, 45));
    Tensor out = ctx.empty({B * T * H * D}, dtype), lse = ctx.empty({B * H * T}, DType::F32);
    Tensor dqkv = ctx.empty({B * T * ld}, dtype), delta = ctx.empty({B * H * T}, DType::F32);
    if (!direct) {
      ctx.attention_forward(out, lse, qkv, B, T, H, KV, D);
      ctx.attention_backward(dqkv, dout, qkv, out, lse, B, T, H, KV, D);
    } else if (dtype == DType::F32) {
      cuda::attention_forward(ptr<float>(out), ptr<float>(lse), ptr<float>(qkv), B, T, H, KV, D, ctx.compute());
      cuda::attention_backward(ptr<float>(dqkv), ptr<float>(delta), ptr<float>(dout), ptr<float>(qkv), ptr<float>(out),
                               ptr<float>(lse), B, T, H, KV, D, ctx.compute());
    } else {
      using bf16 = __nv_bfloat16;
      (flash ? cuda::flash_attention_forward<bf16> : cuda::attention_forward<bf16>)(ptr<bf16>(out), ptr<float>(lse),
                                                                                    ptr<bf16>(qkv), B, T, H, KV, D,
                                                                                    ctx.compute());
      (flash ? cuda::flash_attention_backward<bf16>
             : cuda::attention_backward<bf16>)(ptr<bf16>(dqkv), ptr<float>(delta), ptr<bf16>(dout), ptr<bf16>(qkv),
                                               ptr<bf16>(out), ptr<float>(lse), B, T, H, KV, D, ctx.compute());
    }
    std::vector<unsigned char> all = bytes(ctx, out), l = bytes(ctx, lse), d = bytes(ctx, dqkv);
    all.insert(all.end(), l.begin(), l.end());
    all.insert(all.end(), d.begin(), d.end());
    return all;
  };
  // Every kernel is deterministic, so "ran kernel X" is "bitwise X's result".
  CHECK(run(DType::BF16, 64, false, false) == run(DType::BF16, 64, true, false));
  ctx.set_attention_kernel(cuda::AttentionKernel::kFlash);
  CHECK(ctx.attention_kernel() == cuda::AttentionKernel::kFlash);
  CHECK(run(DType::BF16, 64, false, false) == run(DType::BF16, 64, true, true));
  CHECK(run(DType::BF16, 64, true, true) != run(DType::BF16, 64, true, false));  // the check above can tell them apart
  // fp32 and a head dim without a tensor-core kernel stay on the reference.
  CHECK(run(DType::F32, 64, false, false) == run(DType::F32, 64, true, false));
  CHECK(run(DType::BF16, 16, false, false) == run(DType::BF16, 16, true, false));
}

TEMPLATE_TEST_CASE("CUDA matmul matches the CPU in both weight layouts, with bias, column blocks and accumulation",
                   "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t N = 45, K = 72, OC = 24, width = 40, first = 8;  // out is columns [8, 32) of 40
  for (cpu::WeightLayout layout : {cpu::WeightLayout::kOutIn, cpu::WeightLayout::kInOut}) {
    INFO("layout " << (layout == cpu::WeightLayout::kOutIn ? "kOutIn" : "kInOut"));
    auto inp = rounded<TestType>(random_vector(N * K, 50)), w = rounded<TestType>(random_vector(K * OC, 51, 0.2f));
    auto bias = rounded<TestType>(random_vector(OC, 52)), wide = rounded<TestType>(random_vector(N * width, 53));
    auto dinp = rounded<TestType>(random_vector(N * K, 54));  // accumulate_dinp adds to this
    std::vector<float> out = wide, dw = random_vector(K * OC, 55), db = random_vector(OC, 56);
    cpu::matmul_forward(out.data() + first, width, inp.data(), w.data(), bias.data(), N, K, OC, layout);
    // Backward reads the stored output block as its dout.
    std::vector<float> dout = rounded<TestType>(out);
    Tensor g_inp = upload<TestType>(ctx, inp), g_w = upload<TestType>(ctx, w), g_b = upload<TestType>(ctx, bias);
    Tensor g_out = upload<TestType>(ctx, wide), g_dinp = upload<TestType>(ctx, dinp);
    Tensor g_dw = upload<TestType>(ctx, dw, true), g_db = upload<TestType>(ctx, db, true);
    cuda::matmul_forward(ctx.gemm(), ptr<TestType>(g_out) + first, width, ptr<TestType>(g_inp), ptr<TestType>(g_w),
                         ptr<TestType>(g_b), N, K, OC, layout, ctx.compute());
    check_close("matmul out (block and untouched columns)", download(ctx, g_out), out, tolerance<TestType>());
    Tensor g_dout = upload<TestType>(ctx, dout);
    cpu::matmul_backward(dinp.data(), dw.data(), db.data(), dout.data() + first, width, inp.data(), w.data(), N, K, OC,
                         layout, true);
    const ColumnScratch scratch = column_scratch(ctx, 1, N, OC);
    cuda::matmul_backward(ctx.gemm(), ptr<TestType>(g_dinp), ptr<float>(g_dw), ptr<float>(g_db),
                          ptr<TestType>(g_dout) + first, width, ptr<TestType>(g_inp), ptr<TestType>(g_w), N, K, OC,
                          layout, true, scratch.ptr, scratch.floats, ctx.compute());
    check_close("matmul dinp (accumulated)", download(ctx, g_dinp), dinp, tolerance<TestType>());
    check_close("matmul dweight (fp32, accumulated)", download(ctx, g_dw), dw, kFp32Tolerance);
    check_close("matmul dbias (fp32, accumulated)", download(ctx, g_db), db, kFp32Tolerance);
  }
}

TEMPLATE_TEST_CASE("CUDA fused classifier matches the CPU across row chunks", "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t N = 600, C = 64, V = 333;  // 600 rows: a full 512-row chunk and a partial one
  const DType st = storage_dtype<TestType>();
  auto x = rounded<TestType>(random_vector(N * C, 60)), w = rounded<TestType>(random_vector(V * C, 61, 0.3f));
  std::vector<int32_t> targets;
  for (int64_t i = 0; i < N; ++i) targets.push_back(static_cast<int32_t>((i * 31) % V));
  // dweight starts at zero so that the comparison's scale is the gradient itself (a random
  // start would dwarf it: |dW| here is about 1e-2).
  std::vector<float> losses(N), dx(N * C), dw = zeros(V * C);
  std::vector<float> ws(static_cast<size_t>(cpu::classifier_workspace_floats(N, V)));
  const float dloss = 1.0f / N;
  Tensor g_x = upload<TestType>(ctx, x), g_w = upload<TestType>(ctx, w), g_t = upload_tokens(ctx, targets);
  Tensor g_losses = ctx.empty({N}, DType::F32), g_dx = ctx.empty({N * C}, st), g_dw = upload<TestType>(ctx, dw, true);
  cpu::classifier_forward_backward(losses.data(), dx.data(), dw.data(), x.data(), w.data(), targets.data(), N, C, V,
                                   dloss, ws.data());
  Tensor g_ws = ctx.empty({static_cast<int64_t>(cuda::classifier_workspace_bytes(N, V, dtype_size(st)))}, DType::U8);
  cuda::classifier_forward_backward(ctx.gemm(), ptr<float>(g_losses), ptr<TestType>(g_dx), ptr<float>(g_dw),
                                    ptr<TestType>(g_x), ptr<TestType>(g_w), ptr<int32_t>(g_t), N, C, V, dloss,
                                    g_ws.raw(), ctx.compute());
  check_close("classifier losses", download(ctx, g_losses), losses,
              std::max(kFp32Tolerance * 10, tolerance<TestType>() / 4));
  // dlogits are stored in T before the gradient GEMMs: the storage tolerance for both.
  check_close("classifier dx", download(ctx, g_dx), dx, tolerance<TestType>());
  check_close("classifier dweight", download(ctx, g_dw), dw, tolerance<TestType>());
  // Evaluation only: losses without gradients, dweight untouched.
  Tensor g_losses2 = ctx.empty({N}, DType::F32);
  cuda::classifier_forward_backward<TestType>(ctx.gemm(), ptr<float>(g_losses2), nullptr, nullptr, ptr<TestType>(g_x),
                                              ptr<TestType>(g_w), ptr<int32_t>(g_t), N, C, V, dloss, g_ws.raw(),
                                              ctx.compute());
  check_close("classifier losses (evaluation)", download(ctx, g_losses2), download(ctx, g_losses), 0.0);
}

TEMPLATE_TEST_CASE("CUDA vocab-parallel loss pieces match the CPU, the target inside and outside the rank's range",
                   "[gpu][kernels]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  // A rank holding ids [300, 300 + 333) of a larger vocabulary: some targets are its own, the
  // others belong to other ranks (their target logit is 0 here).
  const int64_t rows = 70, Vl = 333, start = 300;
  auto logits = rounded<TestType>(random_vector(rows * Vl, 150, 4.0f));
  std::vector<int32_t> targets;
  for (int64_t i = 0; i < rows; ++i) targets.push_back(static_cast<int32_t>((i * 97) % 1000));
  std::vector<float> mx(rows), sm(rows), tl(rows);
  cpu::vocab_loss_stats(mx.data(), sm.data(), tl.data(), logits.data(), targets.data(), rows, Vl, start);
  Tensor g_logits = upload<TestType>(ctx, logits), g_t = upload_tokens(ctx, targets);
  Tensor g_mx = ctx.empty({rows}, DType::F32), g_sm = ctx.empty({rows}, DType::F32),
         g_tl = ctx.empty({rows}, DType::F32);
  cuda::vocab_loss_stats(ptr<float>(g_mx), ptr<float>(g_sm), ptr<float>(g_tl), ptr<TestType>(g_logits),
                         ptr<int32_t>(g_t), rows, Vl, start, ctx.compute());
  check_close("vocab loss row max", download(ctx, g_mx), mx, 0.0);  // a max is exact
  check_close("vocab loss row sum", download(ctx, g_sm), sm, kFp32Tolerance * 10);
  check_close("vocab loss target logit", download(ctx, g_tl), tl, 0.0);
  // The combine, as after the group's reductions: another rank's max and sums.
  const std::vector<float> group_max = random_vector(rows, 151, 1.0f);
  std::vector<float> global_max(rows), sm2 = sm, losses(rows);
  for (int64_t i = 0; i < rows; ++i) global_max[static_cast<size_t>(i)] = std::max(mx[i], group_max[i]);
  cpu::vocab_loss_rescale(sm2.data(), mx.data(), global_max.data(), rows);
  cpu::vocab_loss_finish(losses.data(), sm2.data(), global_max.data(), tl.data(), rows);
  Tensor g_max = upload<float>(ctx, global_max, true), g_sum = upload<float>(ctx, sm, true);
  Tensor g_local = upload<float>(ctx, mx, true), g_target = upload<float>(ctx, tl, true);
  Tensor g_losses = ctx.empty({rows}, DType::F32);
  cuda::vocab_loss_rescale(ptr<float>(g_sum), ptr<float>(g_local), ptr<float>(g_max), rows, ctx.compute());
  cuda::vocab_loss_finish(ptr<float>(g_losses), ptr<float>(g_sum), ptr<float>(g_max), ptr<float>(g_target), rows,
                          ctx.compute());
  check_close("vocab loss rescaled sum", download(ctx, g_sum), sm2, kFp32Tolerance);
  check_close("vocab loss losses", download(ctx, g_losses), losses, kFp32Tolerance);
  // dlogits in place, in the storage type.
  const float dloss = 1.0f / rows;
  std::vector<float> d = logits;
  cpu::vocab_loss_dlogits(d.data(), targets.data(), global_max.data(), sm2.data(), rows, Vl, start, dloss);
  Tensor g_sum2 = upload<float>(ctx, sm2, true);
  cuda::vocab_loss_dlogits(ptr<TestType>(g_logits), ptr<int32_t>(g_t), ptr<float>(g_max), ptr<float>(g_sum2), rows, Vl,
                           start, dloss, ctx.compute());
  check_close("vocab loss dlogits", download(ctx, g_logits), d, tolerance<TestType>());
}

TEST_CASE("CUDA column sums repeat bitwise: the same inputs give the same gradients on every run", "[gpu][kernels]") {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  using bf16 = __nv_bfloat16;
  // Several row chunks and column tiles, a partial one of each.
  const int64_t N = 4099, C = 1030, B = 600, T = 3;  // positions: B rows of T·33
  auto inp = rounded<bf16>(random_vector(N * C, 140, 2.0f)), dout = rounded<bf16>(random_vector(N * C, 141));
  auto w = rounded<bf16>(random_vector(C, 142));
  const std::vector<float> grad0 = random_vector(C, 143), dinp0 = rounded<bf16>(random_vector(N * C, 144));
  std::vector<int32_t> tokens(static_cast<size_t>(B * T), 0);
  Tensor g_inp = upload<bf16>(ctx, inp), g_dout = upload<bf16>(ctx, dout), g_w = upload<bf16>(ctx, w);
  Tensor g_tokens = upload_tokens(ctx, tokens);
  Tensor mean = ctx.empty({N}, DType::F32), rstd = ctx.empty({N}, DType::F32), out = ctx.empty({N * C}, DType::BF16);
  cuda::layernorm_forward(ptr<bf16>(out), ptr<float>(mean), ptr<float>(rstd), ptr<bf16>(g_inp), ptr<bf16>(g_w),
                          ptr<bf16>(g_w), N, C, 1e-5f, ctx.compute());
  // Every column-summed gradient from the same starting values; their bytes, concatenated.
  auto run = [&] {
    Tensor ln_dw = upload<float>(ctx, grad0, true), ln_db = upload<float>(ctx, grad0, true);
    Tensor rms_dw = upload<float>(ctx, grad0, true), db = upload<float>(ctx, grad0, true);
    Tensor dwte = upload<float>(ctx, zeros(33), true), dwpe = upload<float>(ctx, zeros(T * 33), true);
    Tensor dinp = upload<bf16>(ctx, dinp0);
    const ColumnScratch two = column_scratch(ctx, 2, N, C), one = column_scratch(ctx, 1, N, C);
    const ColumnScratch positions = column_scratch(ctx, 1, B, T * 33);
    cuda::layernorm_backward(ptr<bf16>(dinp), ptr<float>(ln_dw), ptr<float>(ln_db), ptr<bf16>(g_dout), ptr<bf16>(g_inp),
                             ptr<bf16>(g_w), ptr<float>(mean), ptr<float>(rstd), N, C, two.ptr, two.floats,
                             ctx.compute());
    cuda::rmsnorm_backward(ptr<bf16>(dinp), ptr<float>(rms_dw), ptr<bf16>(g_dout), ptr<bf16>(g_inp), ptr<bf16>(g_w),
                           ptr<float>(rstd), N, C, one.ptr, one.floats, ctx.compute());
    cuda::bias_backward(ptr<float>(db), ptr<bf16>(g_dout), C, N, C, one.ptr, one.floats, ctx.compute());
    // 1800·33 of dout's values as (B, T, 33), every token on the table's one row.
    cuda::embedding_backward(ptr<float>(dwte), ptr<float>(dwpe), ptr<bf16>(g_dout), ptr<int32_t>(g_tokens), B, T, 33, 0,
                             1, positions.ptr, positions.floats, ctx.compute());
    std::vector<unsigned char> all;
    for (const Tensor* t : {&ln_dw, &ln_db, &rms_dw, &db, &dwte, &dwpe, &dinp}) {
      const std::vector<unsigned char> b = bytes(ctx, *t);
      all.insert(all.end(), b.begin(), b.end());
    }
    return all;
  };
  const std::vector<unsigned char> first = run();
  CHECK(first == run());
  CHECK(first == run());
}

TEST_CASE("CUDA casts round to nearest even like the host conversions", "[gpu][kernels]") {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  auto x = random_vector(1000, 70, 100.0f);
  Tensor g_x = upload<float>(ctx, x), g_bf = ctx.empty({1000}, DType::BF16), g_back = ctx.empty({1000}, DType::F32);
  cuda::cast(ptr<__nv_bfloat16>(g_bf), ptr<float>(g_x), 1000, ctx.compute());
  cuda::cast(ptr<float>(g_back), ptr<__nv_bfloat16>(g_bf), 1000, ctx.compute());
  check_close("fp32 -> bf16 -> fp32", download(ctx, g_back), rounded<__nv_bfloat16>(x), 0.0);
  Tensor g_h = ctx.empty({1000}, DType::F16);
  cuda::cast(ptr<__half>(g_h), ptr<float>(g_x), 1000, ctx.compute());
  check_close("fp32 -> fp16", download(ctx, g_h), rounded<__half>(x), 0.0);
}

TEST_CASE("device tensors come from the caching allocator and are reused", "[gpu][allocator]") {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  void* first = nullptr;
  {
    Tensor t = ctx.zeros({1 << 20}, DType::F32);  // 4 MiB
    first = t.raw();
    CHECK(t.device() == Device::cuda(0));
    CHECK(ctx.allocator().stats().allocated == (4u << 20));
    std::vector<float> back = download(ctx, t);
    CHECK(std::all_of(back.begin(), back.end(), [](float v) { return v == 0.0f; }));
  }
  CHECK(ctx.allocator().stats().allocated == 0);
  const int64_t segments = ctx.allocator().stats().backend_allocations;
  Tensor again = ctx.empty({1 << 20}, DType::F32);
  CHECK(again.raw() == first);
  CHECK(ctx.allocator().stats().backend_allocations == segments);
  auto x = random_vector(1000, 80);
  check_close("host -> device -> host", download(ctx, upload<float>(ctx, x)), x, 0.0);
}

TEMPLATE_TEST_CASE("ops on a DeviceContext's tensors run the CUDA kernels: a layer's chain matches the CPU ops",
                   "[gpu][ops]", float, __nv_bfloat16) {
  TESSEL_REQUIRE_GPU();
  DeviceContext ctx(0);
  const int64_t B = 2, T = 40, N = B * T, C = 64, H = 4, KV = 2, D = 16, QKV = (H + 2 * KV) * D;
  auto x = rounded<TestType>(random_vector(N * C, 90)), w = rounded<TestType>(random_vector(C * QKV, 91, 0.1f));
  auto ln_w = rounded<TestType>(random_vector(C, 92)), ln_b = rounded<TestType>(random_vector(C, 93));
  auto host = [](const std::vector<float>& v, const Shape& shape) { return Tensor::from_vector<float>(v, shape); };
  auto dev = [&](const std::vector<float>& v, Shape shape) {
    return upload<TestType>(ctx, v).reshape(std::move(shape));
  };
  const DType st = storage_dtype<TestType>();
  // norm → QKV projection → RoPE → attention, on each side through ops::.
  Tensor hx = host(x, {N, C}), hln = Tensor::zeros({N, C}, DType::F32), hmean = Tensor::zeros({N}, DType::F32);
  Tensor hrstd = Tensor::zeros({N}, DType::F32), hqkv = Tensor::zeros({N, QKV}, DType::F32);
  Tensor hatt = Tensor::zeros({N, H * D}, DType::F32), hlse = Tensor::zeros({B, H, T}, DType::F32);
  ops::layernorm_forward(hln, hmean, hrstd, hx, host(ln_w, {C}), host(ln_b, {C}), 1e-5f);
  Tensor hln_stored = host(rounded<TestType>(std::vector<float>(hln.data<float>(), hln.data<float>() + N * C)), {N, C});
  ops::matmul_forward(hqkv, hln_stored, host(w, {QKV, C}), nullptr, ops::WeightLayout::kOutIn);
  Tensor hqkv_stored =
      host(rounded<TestType>(std::vector<float>(hqkv.data<float>(), hqkv.data<float>() + N * QKV)), {N, QKV});
  ops::rope_forward(hqkv_stored, B, T, H, KV, 10000.0f);
  ops::attention_forward(hatt, hlse, hqkv_stored, B, T, H, KV);

  Tensor dx = dev(x, {N, C}), dln = ctx.empty({N, C}, st), dmean = ctx.empty({N}, DType::F32);
  Tensor drstd = ctx.empty({N}, DType::F32), dqkv = ctx.empty({N, QKV}, st);
  Tensor datt = ctx.empty({N, H * D}, st), dlse = ctx.empty({B, H, T}, DType::F32);
  ops::layernorm_forward(dln, dmean, drstd, dx, dev(ln_w, {C}), dev(ln_b, {C}), 1e-5f);
  ops::matmul_forward(dqkv, dln, dev(w, {QKV, C}), nullptr, ops::WeightLayout::kOutIn);
  ops::rope_forward(dqkv, B, T, H, KV, 10000.0f);
  ops::attention_forward(datt, dlse, dqkv, B, T, H, KV);
  check_close("layer chain: attention output", download(ctx, datt),
              std::vector<float>(hatt.data<float>(), hatt.data<float>() + N * H * D), tolerance<TestType>());
  check_close("layer chain: logsumexp", download(ctx, dlse),
              std::vector<float>(hlse.data<float>(), hlse.data<float>() + B * H * T), tolerance<TestType>());
}

TEST_CASE("a tiny GPT-2, LLaMA and MoE LLaMA with CLA on the GPU in fp32 match the CPU model's loss and gradients",
          "[gpu][model]") {
  TESSEL_REQUIRE_GPU();
  for (const std::string arch : {"gpt2", "llama", "moe"}) {
    INFO(arch);
    // "moe": 4 experts (top-2, a gated shared expert, aux-free balancing) and layer pairs sharing
    // keys and values; the routing runs on the host between the device's kernels.
    const std::string moe = arch == "moe" ? ", cla_share: 2, moe: {experts: 4, top_k: 2, shared_experts: 1, "
                                            "shared_gate: true, expert_ffn_dim: 32, balance: aux_free}"
                                          : "";
    const ModelConfig config = parse_config("model: {arch: " + std::string(arch == "moe" ? "llama" : arch) +
                                                ", vocab_size: 96, seq_len: 40, layers: 2, d_model: 64, heads: 4, "
                                                "kv_heads: 2" +
                                                moe + "}\n",
                                            "tiny")
                                   .model;
    DeviceContext ctx(0);
    TransformerOptions cpu_options(2, 40);
    Transformer cpu(config, cpu_options);
    TransformerOptions gpu_options(2, 40);
    gpu_options.device = &ctx;
    Transformer gpu(config, gpu_options);
    cpu.parameters().initialize(3);
    gpu.parameters().initialize(3);
    cpu.parameters().zero_grads();
    gpu.parameters().zero_grads();
    std::vector<int32_t> tokens(80), targets(80);
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = static_cast<int32_t>((i * 7 + 3) % 96);
      targets[i] = static_cast<int32_t>((i * 13 + 1) % 96);
    }
    const Tensor ht = Tensor::from_vector<int32_t>(tokens, {2, 40}),
                 hy = Tensor::from_vector<int32_t>(targets, {2, 40});
    const float want = cpu.forward_backward(ht, hy, 1.0f);
    const float got = gpu.forward_backward(ctx.to_device(ht), ctx.to_device(hy), 1.0f);
    CHECK(std::fabs(got - want) <= 1e-5 * std::fabs(want));
    const Tensor& g = cpu.parameters().grads();
    check_close("every gradient", download(ctx, gpu.parameters().grads()),
                std::vector<float>(g.data<float>(), g.data<float>() + g.numel()), 1e-4);
  }
}

#else

TEST_CASE("CUDA parity cases need a build with the CUDA toolkit", "[gpu]") {
  WARN("skipped: this build has no CUDA backend (nvcc was not found at configure time)");
}

#endif  // TESSEL_HAVE_CUDA

#include "launch/bench/bench.h"

#include <cstdio>
#include <functional>
#include <type_traits>

#include "core/config/config.h"
#include "core/error.h"
#include "core/io/json.h"
#include "launch/cli_args.h"

#ifdef TESSEL_HAVE_CUDA
#include <cuda_bf16.h>

#include "core/kernels/cuda/cuda_kernels.h"
#include "core/kernels/cuda/device_context.h"
#include "core/kernels/cuda/device_query.h"
#include "core/model/init_rng.h"
#endif

namespace tessel {

#ifdef TESSEL_HAVE_CUDA
namespace {

// Random N(0, scale²) values on the device in the storage type: zeros would flatter the matrix
// units (their power draw, hence clocks, depends on the data).
Tensor random_device(cuda::DeviceContext& ctx, int64_t n, DType dtype, uint64_t seed, float scale = 1.0f) {
  Tensor host = Tensor::empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) {
    const float v = scale * normal_at(seed, "bench", static_cast<uint64_t>(i));
    if (dtype == DType::F32)
      host.data<float>()[i] = v;
    else
      host.data<uint16_t>()[i] = float_to_bf16(v);
  }
  return ctx.to_device(host);
}

struct Timing {
  double ms = 0.0;
};

// Median-free and simple: after `warmup` calls, the mean of `iters` back-to-back calls
// between two events (launch gaps included, as in a step).
Timing time_op(cuda::DeviceContext& ctx, int iters, const std::function<void()>& op) {
  for (int i = 0; i < 3; ++i) op();
  cuda::Event start(true), stop(true);
  start.record(ctx.compute());
  for (int i = 0; i < iters; ++i) op();
  stop.record(ctx.compute());
  stop.synchronize();
  return {stop.elapsed_ms_since(start) / iters};
}

void report(const Config& config, const char* dtype, const char* op, const Timing& t, double flops, double bytes) {
  JsonLine line;
  line.add("bench", "kernels").add("impl", "tessel").add("config", config.source).add("dtype", dtype).add("op", op);
  line.add("ms", t.ms, 4);
  if (flops > 0) line.add("tflops", flops / (t.ms * 1e-3) / 1e12, 2);
  if (bytes > 0) line.add("gbps", bytes / (t.ms * 1e-3) / 1e9, 1);
  std::printf("%s\n", line.str().c_str());
  std::fflush(stdout);
}

template <typename T>
void bench_all(cuda::DeviceContext& ctx, const Config& config, int iters, const char* dtype_name) {
  const ModelConfig& m = config.model;
  const DType st = std::is_same<T, float>::value ? DType::F32 : DType::BF16;
  const double es = static_cast<double>(dtype_size(st));
  const int64_t B = config.batch.micro, T_ = m.seq_len, C = m.d_model, H = m.heads, KV = m.kv_heads;
  const int64_t D = m.head_dim(), N = B * T_, V = m.vocab_size;
  const bool swiglu = m.activation == Activation::kSwiGlu;
  const int64_t F = m.ffn_dim, ffn_in = swiglu ? 2 * F : F, QKV = (H + 2 * KV) * D;
  // The shapes first, for a peer to run the same ones (bench/cuda_kernels.sh).
  std::printf("%s\n", JsonLine()
                          .add("bench", "kernels")
                          .add("op", "shapes")
                          .add("dtype", dtype_name)
                          .add("B", B)
                          .add("T", T_)
                          .add("C", C)
                          .add("H", H)
                          .add("KV", KV)
                          .add("F", F)
                          .add("V", V)
                          .add("norm", name_of(m.norm))
                          .add("activation", name_of(m.activation))
                          .add("iters", iters)
                          .str()
                          .c_str());
  auto p = [](const Tensor& t) { return static_cast<T*>(t.raw()); };
  auto f = [](const Tensor& t) { return static_cast<float*>(t.raw()); };
  const cudaStream_t s = ctx.compute();

  Tensor x = random_device(ctx, N * C, st, 1), y = ctx.empty({N * C}, st), dx = random_device(ctx, N * C, st, 2);
  Tensor w = random_device(ctx, C, st, 3), b = random_device(ctx, C, st, 4);
  Tensor mean = ctx.empty({N}, DType::F32), rstd = ctx.empty({N}, DType::F32);
  Tensor dw = ctx.zeros({C}, DType::F32), db = ctx.zeros({C}, DType::F32);
  // The column sums' partials: two gradients' worth (LayerNorm's weight and bias).
  const int64_t norm_scratch_floats = 2 * cuda::column_sum_scratch_floats(N, C);
  Tensor norm_scratch = ctx.empty({norm_scratch_floats}, DType::F32);
  if (m.norm == Norm::kLayerNorm) {
    report(
        config, dtype_name, "layernorm_forward",
        time_op(ctx, iters, [&] { cuda::layernorm_forward(p(y), f(mean), f(rstd), p(x), p(w), p(b), N, C, 1e-5f, s); }),
        0, 2 * N * C * es);
    report(config, dtype_name, "layernorm_backward",
           time_op(ctx, iters,
                   [&] {
                     cuda::layernorm_backward(p(dx), f(dw), f(db), p(y), p(x), p(w), f(mean), f(rstd), N, C,
                                              f(norm_scratch), norm_scratch_floats, s);
                   }),
           0, 4 * N * C * es);
  } else {
    report(config, dtype_name, "rmsnorm_forward",
           time_op(ctx, iters, [&] { cuda::rmsnorm_forward(p(y), f(rstd), p(x), p(w), N, C, 1e-5f, s); }), 0,
           2 * N * C * es);
    report(config, dtype_name, "rmsnorm_backward",
           time_op(ctx, iters,
                   [&] {
                     cuda::rmsnorm_backward(p(dx), f(dw), p(y), p(x), p(w), f(rstd), N, C, f(norm_scratch),
                                            norm_scratch_floats, s);
                   }),
           0, 4 * N * C * es);
  }

  // The QKV projection and the FFN input projection, forward and backward (dinp + dweight).
  Tensor w_qkv = random_device(ctx, QKV * C, st, 5, 0.02f), qkv = ctx.empty({N * QKV}, st);
  Tensor dw_qkv = ctx.zeros({QKV * C}, DType::F32);
  report(config, dtype_name, "matmul_forward_qkv",
         time_op(ctx, iters,
                 [&] {
                   cuda::matmul_forward(ctx.gemm(), p(qkv), QKV, p(x), p(w_qkv), static_cast<T*>(nullptr), N, C, QKV,
                                        cuda::WeightLayout::kOutIn, s);
                 }),
         2.0 * N * C * QKV, 0);
  Tensor w_fc = random_device(ctx, ffn_in * C, st, 6, 0.02f), fc = random_device(ctx, N * ffn_in, st, 7);
  Tensor dw_fc = ctx.zeros({ffn_in * C}, DType::F32);
  report(config, dtype_name, "matmul_forward_ffn_in",
         time_op(ctx, iters,
                 [&] {
                   cuda::matmul_forward(ctx.gemm(), p(fc), ffn_in, p(x), p(w_fc), static_cast<T*>(nullptr), N, C,
                                        ffn_in, cuda::WeightLayout::kOutIn, s);
                 }),
         2.0 * N * C * ffn_in, 0);
  report(config, dtype_name, "matmul_backward_ffn_in",
         time_op(ctx, iters,
                 [&] {
                   cuda::matmul_backward(ctx.gemm(), p(dx), f(dw_fc), static_cast<float*>(nullptr), p(fc), ffn_in, p(x),
                                         p(w_fc), N, C, ffn_in, cuda::WeightLayout::kOutIn, false, nullptr, 0, s);
                 }),
         4.0 * N * C * ffn_in, 0);
  // The bias gradient of that projection alone: a column sum of its (N, ffn_in) output gradient.
  const int64_t bias_scratch_floats = cuda::column_sum_scratch_floats(N, ffn_in);
  Tensor db_fc = ctx.zeros({ffn_in}, DType::F32), bias_scratch = ctx.empty({bias_scratch_floats}, DType::F32);
  report(config, dtype_name, "bias_backward",
         time_op(
             ctx, iters,
             [&] { cuda::bias_backward(f(db_fc), p(fc), ffn_in, N, ffn_in, f(bias_scratch), bias_scratch_floats, s); }),
         0, N * ffn_in * es);

  // Attention on the projected q, k, v: causal, so half of the T×T products.
  qkv = random_device(ctx, N * QKV, st, 8);
  Tensor att = ctx.empty({N * H * D}, st), lse = ctx.empty({B * H * T_}, DType::F32);
  Tensor datt = random_device(ctx, N * H * D, st, 9), dqkv = ctx.empty({N * QKV}, st);
  Tensor delta = ctx.empty({B * H * T_}, DType::F32);
  const double att_flops = 2.0 * B * H * double(T_) * T_ * D;  // 4·B·H·T²·D halved by the mask
  // Both kernels where the flash one runs (bf16/fp16, its head dims): attention_forward and
  // attention_backward are run.attention's default, the _reference and _flash rows each kernel.
  const bool flash = !std::is_same<T, float>::value && cuda::flash_attention_supported(D);
  auto forward = [&](cuda::AttentionKernel k) {
    if constexpr (!std::is_same<T, float>::value) {
      if (k == cuda::AttentionKernel::kFlash) {
        return time_op(ctx, iters, [&] { cuda::flash_attention_forward(p(att), f(lse), p(qkv), B, T_, H, KV, D, s); });
      }
    }
    return time_op(ctx, iters, [&] { cuda::attention_forward(p(att), f(lse), p(qkv), B, T_, H, KV, D, s); });
  };
  auto backward = [&](cuda::AttentionKernel k) {
    if constexpr (!std::is_same<T, float>::value) {
      if (k == cuda::AttentionKernel::kFlash) {
        return time_op(ctx, iters, [&] {
          cuda::flash_attention_backward(p(dqkv), f(delta), p(datt), p(qkv), p(att), f(lse), B, T_, H, KV, D, s);
        });
      }
    }
    return time_op(ctx, iters, [&] {
      cuda::attention_backward(p(dqkv), f(delta), p(datt), p(qkv), p(att), f(lse), B, T_, H, KV, D, s);
    });
  };
  const cuda::AttentionKernel chosen = flash ? cuda::kDefaultAttentionKernel : cuda::AttentionKernel::kReference;
  report(config, dtype_name, "attention_forward", forward(chosen), att_flops, 0);
  report(config, dtype_name, "attention_backward", backward(chosen), 2.5 * att_flops, 0);
  if (flash) {
    report(config, dtype_name, "attention_forward_reference", forward(cuda::AttentionKernel::kReference), att_flops, 0);
    report(config, dtype_name, "attention_backward_reference", backward(cuda::AttentionKernel::kReference),
           2.5 * att_flops, 0);
    report(config, dtype_name, "attention_forward_flash", forward(cuda::AttentionKernel::kFlash), att_flops, 0);
    report(config, dtype_name, "attention_backward_flash", backward(cuda::AttentionKernel::kFlash), 2.5 * att_flops, 0);
  }

  // Activation.
  Tensor act = ctx.empty({N * F}, st), dfc = ctx.empty({N * ffn_in}, st), dact = random_device(ctx, N * F, st, 10);
  if (swiglu) {
    report(config, dtype_name, "swiglu_forward",
           time_op(ctx, iters, [&] { cuda::swiglu_forward(p(act), p(fc), N, F, s); }), 0, 3 * N * F * es);
    report(config, dtype_name, "swiglu_backward",
           time_op(ctx, iters, [&] { cuda::swiglu_backward(p(dfc), p(fc), p(dact), N, F, s); }), 0, 5 * N * F * es);
  } else {
    report(config, dtype_name, "gelu_forward",
           time_op(ctx, iters, [&] { cuda::gelu_forward(p(act), p(fc), N * F, s); }), 0, 2 * N * F * es);
    report(config, dtype_name, "gelu_backward",
           time_op(ctx, iters, [&] { cuda::gelu_backward(p(dfc), p(fc), p(dact), N * F, s); }), 0, 3 * N * F * es);
  }

  // Classifier + cross-entropy, forward and backward, over the vocabulary.
  Tensor head = random_device(ctx, V * C, st, 11, 0.02f), dhead = ctx.zeros({V * C}, DType::F32);
  Tensor losses = ctx.empty({N}, DType::F32), targets = ctx.zeros({N}, DType::I32);
  Tensor ws = ctx.empty({static_cast<int64_t>(cuda::classifier_workspace_bytes(N, V, dtype_size(st)))}, DType::U8);
  report(config, dtype_name, "classifier_forward_backward",
         time_op(ctx, iters,
                 [&] {
                   cuda::classifier_forward_backward(ctx.gemm(), f(losses), p(dx), f(dhead), p(x), p(head),
                                                     static_cast<int32_t*>(targets.raw()), N, C, V, 1.0f / N, ws.raw(),
                                                     s);
                 }),
         6.0 * N * C * V, 0);

  // AdamW over one layer's worth of parameters (fp32 master, moments, gradient; T copy).
  const int64_t P = 4 * C * C + 2 * C * F;
  Tensor master = random_device(ctx, P, DType::F32, 12), grad = random_device(ctx, P, DType::F32, 13);
  Tensor m1 = ctx.zeros({P}, DType::F32), m2 = ctx.zeros({P}, DType::F32), copy = ctx.empty({P}, st);
  AdamWScalars args;
  args.step_size = 1e-4f;
  report(config, dtype_name, "adamw",
         time_op(ctx, iters, [&] { cuda::adamw_update(f(master), p(copy), f(grad), f(m1), f(m2), P, args, s); }), 0,
         P * (28.0 + es));
}

}  // namespace
#endif  // TESSEL_HAVE_CUDA

int run_bench_kernels(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel bench kernels", {"--dtype", "--iters"});
  TESSEL_CHECK(a.positional.size() == 1)
      << "usage: tessel bench kernels CONFIG [--set key=value ...] [--dtype bf16|fp32] [--iters N]";
  const Config config = load_config(a.positional[0], a.overrides);
  const std::string dtype = a.get("--dtype", "bf16");
  TESSEL_CHECK(dtype == "bf16" || dtype == "fp32")
      << "tessel bench kernels: --dtype " << dtype << " is not one of bf16, fp32";
  const int64_t iters = a.get_int("--iters", 20);
  TESSEL_CHECK(iters > 0) << "tessel bench kernels: --iters must be positive";
#ifdef TESSEL_HAVE_CUDA
  TESSEL_CHECK(cuda::device_count() > 0) << "tessel bench kernels: no CUDA device is visible to this process "
                                            "(hint: nvidia-smi lists the GPUs; CUDA_VISIBLE_DEVICES selects them)";
  cuda::DeviceContext ctx(0);
  std::fprintf(stderr, "bench kernels: %s on %s\n", config.source.c_str(), ctx.describe().c_str());
  if (dtype == "bf16")
    bench_all<__nv_bfloat16>(ctx, config, static_cast<int>(iters), "bf16");
  else
    bench_all<float>(ctx, config, static_cast<int>(iters), "fp32");
  return 0;
#else
  TESSEL_FAIL() << "tessel bench kernels: this build has no CUDA backend (nvcc was not found when it was "
                   "configured; hint: docs/gpu.md builds one on a GPU machine)";
#endif
}

}  // namespace tessel

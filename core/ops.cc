#include "core/ops.h"

namespace tessel {
namespace ops {
namespace {

// Every op is fp32 on the CPU for now; the checks below name the offending tensor.
void expect_f32_cpu(const Tensor& t, const char* op, const char* what) {
  TESSEL_CHECK(t.defined()) << op << ": " << what << " is undefined";
  TESSEL_CHECK(t.dtype() == DType::F32) << op << ": " << what << " must be F32, got " << t.str();
  TESSEL_CHECK(t.device().is_cpu()) << op << ": " << what << " is on " << t.device().str()
                                    << "; this build runs ops on the CPU only";
}

void expect_numel(const Tensor& t, int64_t n, const char* op, const char* what) {
  TESSEL_CHECK(t.numel() == n) << op << ": " << what << " " << t.str() << " should hold " << n
                               << " elements";
}

int64_t rows_of(const Tensor& t, int64_t cols, const char* op, const char* what) {
  TESSEL_CHECK(cols > 0 && t.numel() % cols == 0)
      << op << ": " << what << " " << t.str() << " is not a whole number of rows of " << cols;
  return t.numel() / cols;
}

}  // namespace

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                       const Tensor* wpe, int64_t vocab_start, int64_t vocab_size) {
  const char* op = "embedding_forward";
  expect_f32_cpu(out, op, "out");
  expect_f32_cpu(wte, op, "wte");
  TESSEL_CHECK(tokens.dtype() == DType::I32 && tokens.dim() == 2) << op << ": tokens must be I32 (B, T)";
  const int64_t B = tokens.size(0), T = tokens.size(1), C = wte.size(1);
  expect_numel(out, B * T * C, op, "out");
  const bool sharded = vocab_size >= 0;
  if (!sharded) vocab_size = wte.size(0);
  TESSEL_CHECK(vocab_start >= 0 && vocab_start + wte.size(0) <= vocab_size)
      << op << ": rows [" << vocab_start << ", " << vocab_start + wte.size(0) << ") outside a vocabulary of " << vocab_size;
  const int32_t* tok = tokens.data<int32_t>();
  for (int64_t i = 0; i < B * T; ++i) {
    TESSEL_CHECK(tok[i] >= 0 && tok[i] < vocab_size)
        << op << ": token id " << tok[i] << " at position " << i << " is outside the vocabulary [0, "
        << vocab_size << ")";
  }
  if (wpe != nullptr) {
    expect_f32_cpu(*wpe, op, "wpe");
    TESSEL_CHECK(wpe->size(0) >= T && wpe->size(1) == C)
        << op << ": wpe " << wpe->str() << " has fewer than T=" << T << " positions";
  }
  cpu::embedding_forward(out.data<float>(), tok, wte.data<float>(),
                         wpe ? wpe->data<float>() : nullptr, B, T, C, vocab_start, sharded ? wte.size(0) : -1);
}

void embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout,
                        const Tensor& tokens, int64_t vocab_start) {
  const char* op = "embedding_backward";
  expect_f32_cpu(dwte, op, "dwte");
  expect_f32_cpu(dout, op, "dout");
  const int64_t B = tokens.size(0), T = tokens.size(1), C = dwte.size(1);
  expect_numel(dout, B * T * C, op, "dout");
  cpu::embedding_backward(dwte.data<float>(), dwpe ? dwpe->data<float>() : nullptr,
                          dout.data<float>(), tokens.data<int32_t>(), B, T, C, vocab_start, dwte.size(0));
}

namespace {
// (K, OC) of a weight in the given layout.
std::pair<int64_t, int64_t> weight_dims(const Tensor& w, WeightLayout layout, const char* op) {
  TESSEL_CHECK(w.dim() == 2) << op << ": weight must be 2-D, got " << w.str();
  return layout == WeightLayout::kOutIn ? std::make_pair(w.size(1), w.size(0))
                                        : std::make_pair(w.size(0), w.size(1));
}
}  // namespace

void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                    const Tensor* bias, WeightLayout layout, ColumnBlock block) {
  const char* op = "matmul_forward";
  expect_f32_cpu(out, op, "out");
  expect_f32_cpu(inp, op, "inp");
  expect_f32_cpu(weight, op, "weight");
  const auto [K, OC] = weight_dims(weight, layout, op);
  const int64_t N = rows_of(inp, K, op, "inp");
  const int64_t width = block.width > 0 ? block.width : OC;
  TESSEL_CHECK(block.first + OC <= width) << op << ": column block exceeds the output width";
  expect_numel(out, N * width, op, "out");
  if (bias != nullptr) {
    expect_f32_cpu(*bias, op, "bias");
    expect_numel(*bias, OC, op, "bias");
  }
  cpu::matmul_forward(out.data<float>() + block.first, width, inp.data<float>(),
                      weight.data<float>(), bias ? bias->data<float>() : nullptr, N, K, OC,
                      layout);
}

void matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias,
                     const Tensor& dout, const Tensor& inp, const Tensor& weight,
                     WeightLayout layout, bool accumulate_dinp, ColumnBlock block) {
  const char* op = "matmul_backward";
  expect_f32_cpu(dout, op, "dout");
  expect_f32_cpu(inp, op, "inp");
  expect_f32_cpu(dweight, op, "dweight");
  const auto [K, OC] = weight_dims(weight, layout, op);
  const int64_t N = rows_of(inp, K, op, "inp");
  const int64_t width = block.width > 0 ? block.width : OC;
  expect_numel(dout, N * width, op, "dout");
  expect_numel(dweight, weight.numel(), op, "dweight");
  if (dinp != nullptr) expect_numel(*dinp, N * K, op, "dinp");
  if (dbias != nullptr) expect_numel(*dbias, OC, op, "dbias");
  cpu::matmul_backward(dinp ? dinp->data<float>() : nullptr, dweight.data<float>(),
                       dbias ? dbias->data<float>() : nullptr, dout.data<float>() + block.first,
                       width, inp.data<float>(), weight.data<float>(), N, K, OC, layout,
                       accumulate_dinp);
}

void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                       const Tensor& inp, const Tensor& weight, const Tensor& bias, float eps) {
  const char* op = "layernorm_forward";
  expect_f32_cpu(inp, op, "inp");
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(out, N * C, op, "out");
  expect_numel(mean, N, op, "mean");
  expect_numel(rstd, N, op, "rstd");
  expect_numel(bias, C, op, "bias");
  cpu::layernorm_forward(out.data<float>(), mean.data<float>(), rstd.data<float>(),
                         inp.data<float>(), weight.data<float>(), bias.data<float>(), N, C, eps);
}

void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                        const Tensor& dout, const Tensor& inp, const Tensor& weight,
                        const Tensor& mean, const Tensor& rstd) {
  const char* op = "layernorm_backward";
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(dinp, N * C, op, "dinp");
  expect_numel(dout, N * C, op, "dout");
  expect_numel(dweight, C, op, "dweight");
  expect_numel(dbias, C, op, "dbias");
  cpu::layernorm_backward(dinp.data<float>(), dweight.data<float>(), dbias.data<float>(),
                          dout.data<float>(), inp.data<float>(), weight.data<float>(),
                          mean.data<float>(), rstd.data<float>(), N, C);
}

void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp,
                     const Tensor& weight, float eps) {
  const char* op = "rmsnorm_forward";
  expect_f32_cpu(inp, op, "inp");
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(out, N * C, op, "out");
  expect_numel(rstd, N, op, "rstd");
  cpu::rmsnorm_forward(out.data<float>(), rstd.data<float>(), inp.data<float>(),
                       weight.data<float>(), N, C, eps);
}

void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout,
                      const Tensor& inp, const Tensor& weight, const Tensor& rstd) {
  const char* op = "rmsnorm_backward";
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(dinp, N * C, op, "dinp");
  expect_numel(dout, N * C, op, "dout");
  expect_numel(dweight, C, op, "dweight");
  cpu::rmsnorm_backward(dinp.data<float>(), dweight.data<float>(), dout.data<float>(),
                        inp.data<float>(), weight.data<float>(), rstd.data<float>(), N, C);
}

void gelu_forward(const Tensor& out, const Tensor& inp) {
  expect_f32_cpu(inp, "gelu_forward", "inp");
  expect_numel(out, inp.numel(), "gelu_forward", "out");
  cpu::gelu_forward(out.data<float>(), inp.data<float>(), inp.numel());
}

void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) {
  expect_numel(dinp, inp.numel(), "gelu_backward", "dinp");
  expect_numel(dout, inp.numel(), "gelu_backward", "dout");
  cpu::gelu_backward(dinp.data<float>(), inp.data<float>(), dout.data<float>(), inp.numel());
}

void swiglu_forward(const Tensor& out, const Tensor& inp) {
  const char* op = "swiglu_forward";
  expect_f32_cpu(inp, op, "inp");
  const int64_t F = out.size(-1);
  const int64_t N = rows_of(inp, 2 * F, op, "inp");
  expect_numel(out, N * F, op, "out");
  cpu::swiglu_forward(out.data<float>(), inp.data<float>(), N, F);
}

void swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) {
  const char* op = "swiglu_backward";
  const int64_t F = dout.size(-1);
  const int64_t N = rows_of(inp, 2 * F, op, "inp");
  expect_numel(dinp, N * 2 * F, op, "dinp");
  cpu::swiglu_backward(dinp.data<float>(), inp.data<float>(), dout.data<float>(), N, F);
}

namespace {
int64_t head_dim_of(const Tensor& qkv, int64_t B, int64_t T, int64_t H, int64_t KV,
                    const char* op) {
  TESSEL_CHECK(H > 0 && KV > 0 && H % KV == 0) << op << ": heads " << H << " / kv_heads " << KV;
  const int64_t width = rows_of(qkv, B * T, op, "qkv") ;
  TESSEL_CHECK(width % (H + 2 * KV) == 0)
      << op << ": qkv row width " << width << " is not (H + 2·KV)·D";
  return width / (H + 2 * KV);
}
}  // namespace

void rope_forward(const Tensor& qkv, int64_t B, int64_t T, int64_t H, int64_t KV, float theta) {
  expect_f32_cpu(qkv, "rope_forward", "qkv");
  const int64_t D = head_dim_of(qkv, B, T, H, KV, "rope_forward");
  TESSEL_CHECK(D % 2 == 0) << "rope_forward: head dim " << D << " must be even";
  // q and k heads are contiguous at the start of each row: rotate H + KV heads together.
  cpu::rope_forward(qkv.data<float>(), (H + 2 * KV) * D, B, T, H + KV, D, theta);
}

void rope_backward(const Tensor& dqkv, int64_t B, int64_t T, int64_t H, int64_t KV,
                   float theta) {
  const int64_t D = head_dim_of(dqkv, B, T, H, KV, "rope_backward");
  cpu::rope_backward(dqkv.data<float>(), (H + 2 * KV) * D, B, T, H + KV, D, theta);
}

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B,
                       int64_t T, int64_t H, int64_t KV) {
  const char* op = "attention_forward";
  expect_f32_cpu(qkv, op, "qkv");
  const int64_t D = head_dim_of(qkv, B, T, H, KV, op);
  expect_numel(out, B * T * H * D, op, "out");
  expect_numel(lse, B * H * T, op, "lse");
  cpu::attention_forward(out.data<float>(), lse.data<float>(), qkv.data<float>(), B, T, H, KV,
                         D);
}

void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, int64_t B, int64_t T, int64_t H,
                        int64_t KV) {
  const char* op = "attention_backward";
  const int64_t D = head_dim_of(qkv, B, T, H, KV, op);
  expect_numel(dqkv, qkv.numel(), op, "dqkv");
  expect_numel(dout, B * T * H * D, op, "dout");
  expect_numel(out, B * T * H * D, op, "out");
  expect_numel(lse, B * H * T, op, "lse");
  cpu::attention_backward(dqkv.data<float>(), dout.data<float>(), qkv.data<float>(),
                          out.data<float>(), lse.data<float>(), B, T, H, KV, D);
}

void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b) {
  expect_numel(a, out.numel(), "residual_forward", "a");
  expect_numel(b, out.numel(), "residual_forward", "b");
  cpu::residual_forward(out.data<float>(), a.data<float>(), b.data<float>(), out.numel());
}

int64_t classifier_workspace_numel(int64_t N, int64_t V) {
  return cpu::classifier_workspace_floats(N, V);
}

void classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight,
                                 const Tensor& x, const Tensor& weight, const Tensor& targets,
                                 float dloss, const Tensor& workspace) {
  const char* op = "classifier_forward_backward";
  expect_f32_cpu(x, op, "x");
  expect_f32_cpu(weight, op, "weight");
  TESSEL_CHECK(weight.dim() == 2) << op << ": weight must be (V, C), got " << weight.str();
  const int64_t V = weight.size(0), C = weight.size(1);
  const int64_t N = rows_of(x, C, op, "x");
  expect_numel(losses, N, op, "losses");
  TESSEL_CHECK(targets.dtype() == DType::I32) << op << ": targets must be I32";
  expect_numel(targets, N, op, "targets");
  const int32_t* tgt = targets.data<int32_t>();
  for (int64_t i = 0; i < N; ++i) {
    TESSEL_CHECK(tgt[i] >= 0 && tgt[i] < V)
        << op << ": target id " << tgt[i] << " at position " << i
        << " is outside the vocabulary [0, " << V << ")";
  }
  TESSEL_CHECK((dx == nullptr) == (dweight == nullptr)) << op << ": pass both dx and dweight or neither";
  if (dx != nullptr) {
    expect_numel(*dx, N * C, op, "dx");
    expect_numel(*dweight, V * C, op, "dweight");
  }
  expect_f32_cpu(workspace, op, "workspace");
  TESSEL_CHECK(workspace.numel() >= classifier_workspace_numel(N, V))
      << op << ": workspace " << workspace.str() << " is smaller than "
      << classifier_workspace_numel(N, V) << " elements";
  cpu::classifier_forward_backward(losses.data<float>(), dx ? dx->data<float>() : nullptr,
                                   dweight ? dweight->data<float>() : nullptr, x.data<float>(),
                                   weight.data<float>(), tgt, N, C, V, dloss,
                                   workspace.data<float>());
}

}  // namespace ops
}  // namespace tessel

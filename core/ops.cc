#include "core/ops.h"

#include "core/device_backend.h"

namespace tessel {
namespace ops {
namespace {

// One op's operands, checked as they are named: every tensor on the same side (all on the CPU,
// or all made by one device backend), values (activations, weights) in one floating type (F32
// on the CPU; F32, BF16 or F16 on a device), and the tensors that are always F32 (parameter
// gradients, norm statistics, logsumexp, losses) in F32. backend() is then the device backend
// to run on, or null for the CPU launchers.
class Operands {
 public:
  explicit Operands(const char* op) : op_(op) {}

  Operands& value(const Tensor& t, const char* what) {
    side(t, what);
    if (!value_seen_) {
      value_dtype_ = t.dtype();
      value_seen_ = true;
      const bool floating = t.dtype() == DType::F32 || t.dtype() == DType::BF16 || t.dtype() == DType::F16;
      TESSEL_CHECK(floating) << op_ << ": " << what << " must be F32, BF16 or F16, got " << t.str();
      TESSEL_CHECK(backend_ != nullptr || t.dtype() == DType::F32)
          << op_ << ": " << what << " is " << t.str() << "; the CPU backend computes in F32 only";
    } else {
      TESSEL_CHECK(t.dtype() == value_dtype_) << op_ << ": " << what << " is " << t.str() << ", expected "
                                              << dtype_name(value_dtype_) << " like the op's other values";
    }
    return *this;
  }
  Operands& f32(const Tensor& t, const char* what) {
    side(t, what);
    TESSEL_CHECK(t.dtype() == DType::F32) << op_ << ": " << what << " must be F32, got " << t.str();
    return *this;
  }
  Operands& i32(const Tensor& t, const char* what) {
    side(t, what);
    TESSEL_CHECK(t.dtype() == DType::I32) << op_ << ": " << what << " must be I32, got " << t.str();
    return *this;
  }
  Operands& any(const Tensor& t, const char* what) {
    side(t, what);
    return *this;
  }
  DeviceBackend* backend() const { return backend_; }
  bool on_cpu() const { return backend_ == nullptr; }

 private:
  void side(const Tensor& t, const char* what) {
    TESSEL_CHECK(t.defined()) << op_ << ": " << what << " is undefined";
    DeviceBackend* b = t.storage()->backend();
    TESSEL_CHECK(t.device().is_cpu() || b != nullptr)
        << op_ << ": " << what << " " << t.str() << " was not made by a device backend (make device tensors "
        << "with the device's DeviceContext)";
    if (first_ == nullptr) {
      backend_ = b;
      device_ = t.device();
      first_ = what;
      return;
    }
    TESSEL_CHECK(b == backend_ && t.device() == device_)
        << op_ << ": " << what << " is " << t.str() << " but " << first_ << " is on " << device_.str()
        << (b != backend_ && t.device() == device_ ? " of another device context" : "")
        << "; hint: all tensors of an op must be on one device";
  }

  const char* op_;
  const char* first_ = nullptr;  // the first operand checked, named in errors
  bool value_seen_ = false;
  DeviceBackend* backend_ = nullptr;
  Device device_;
  DType value_dtype_ = DType::F32;
};

void expect_numel(const Tensor& t, int64_t n, const char* op, const char* what) {
  TESSEL_CHECK(t.numel() == n) << op << ": " << what << " " << t.str() << " should hold " << n << " elements";
}

int64_t rows_of(const Tensor& t, int64_t cols, const char* op, const char* what) {
  TESSEL_CHECK(cols > 0 && t.numel() % cols == 0)
      << op << ": " << what << " " << t.str() << " is not a whole number of rows of " << cols;
  return t.numel() / cols;
}

}  // namespace

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                       int64_t vocab_start, int64_t vocab_size) {
  const char* op = "embedding_forward";
  Operands o(op);
  o.value(out, "out").value(wte, "wte").i32(tokens, "tokens");
  if (wpe != nullptr) o.value(*wpe, "wpe");
  TESSEL_CHECK(tokens.dim() == 2) << op << ": tokens must be I32 (B, T)";
  const int64_t B = tokens.size(0), T = tokens.size(1), C = wte.size(1);
  expect_numel(out, B * T * C, op, "out");
  const bool sharded = vocab_size >= 0;
  if (!sharded) vocab_size = wte.size(0);
  TESSEL_CHECK(vocab_start >= 0 && vocab_start + wte.size(0) <= vocab_size)
      << op << ": rows [" << vocab_start << ", " << vocab_start + wte.size(0) << ") outside a vocabulary of "
      << vocab_size;
  if (wpe != nullptr) {
    TESSEL_CHECK(wpe->size(0) >= T && wpe->size(1) == C)
        << op << ": wpe " << wpe->str() << " has fewer than T=" << T << " positions";
  }
  const int64_t rows = sharded ? wte.size(0) : -1;
  if (!o.on_cpu()) {
    // Device tokens are not read back to be checked: the kernel reads only rows it holds, so
    // an id outside the vocabulary embeds as zeros (the data loader checks ids on the host).
    o.backend()->embedding_forward(out, tokens, wte, wpe, vocab_start, wte.size(0));
    return;
  }
  const int32_t* tok = tokens.data<int32_t>();
  for (int64_t i = 0; i < B * T; ++i) {
    TESSEL_CHECK(tok[i] >= 0 && tok[i] < vocab_size) << op << ": token id " << tok[i] << " at position " << i
                                                     << " is outside the vocabulary [0, " << vocab_size << ")";
  }
  cpu::embedding_forward(out.data<float>(), tok, wte.data<float>(), wpe ? wpe->data<float>() : nullptr, B, T, C,
                         vocab_start, rows);
}

void embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                        int64_t vocab_start) {
  const char* op = "embedding_backward";
  Operands o(op);
  o.value(dout, "dout").f32(dwte, "dwte").i32(tokens, "tokens");
  if (dwpe != nullptr) o.f32(*dwpe, "dwpe");
  const int64_t B = tokens.size(0), T = tokens.size(1), C = dwte.size(1);
  expect_numel(dout, B * T * C, op, "dout");
  if (!o.on_cpu()) {
    o.backend()->embedding_backward(dwte, dwpe, dout, tokens, vocab_start, dwte.size(0));
    return;
  }
  cpu::embedding_backward(dwte.data<float>(), dwpe ? dwpe->data<float>() : nullptr, dout.data<float>(),
                          tokens.data<int32_t>(), B, T, C, vocab_start, dwte.size(0));
}

namespace {
// (K, OC) of a weight in the given layout.
std::pair<int64_t, int64_t> weight_dims(const Tensor& w, WeightLayout layout, const char* op) {
  TESSEL_CHECK(w.dim() == 2) << op << ": weight must be 2-D, got " << w.str();
  return layout == WeightLayout::kOutIn ? std::make_pair(w.size(1), w.size(0)) : std::make_pair(w.size(0), w.size(1));
}
}  // namespace

void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor* bias, WeightLayout layout,
                    ColumnBlock block) {
  const char* op = "matmul_forward";
  Operands o(op);
  o.value(out, "out").value(inp, "inp").value(weight, "weight");
  if (bias != nullptr) o.value(*bias, "bias");
  const auto [K, OC] = weight_dims(weight, layout, op);
  const int64_t N = rows_of(inp, K, op, "inp");
  const int64_t width = block.width > 0 ? block.width : OC;
  TESSEL_CHECK(block.first + OC <= width) << op << ": column block exceeds the output width";
  expect_numel(out, N * width, op, "out");
  if (bias != nullptr) expect_numel(*bias, OC, op, "bias");
  if (!o.on_cpu()) {
    o.backend()->matmul_forward(out, block.first, width, inp, weight, bias, N, K, OC, layout);
    return;
  }
  cpu::matmul_forward(out.data<float>() + block.first, width, inp.data<float>(), weight.data<float>(),
                      bias ? bias->data<float>() : nullptr, N, K, OC, layout);
}

void matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias, const Tensor& dout,
                     const Tensor& inp, const Tensor& weight, WeightLayout layout, bool accumulate_dinp,
                     ColumnBlock block) {
  const char* op = "matmul_backward";
  Operands o(op);
  o.value(dout, "dout").value(inp, "inp").value(weight, "weight").f32(dweight, "dweight");
  if (dinp != nullptr) o.value(*dinp, "dinp");
  if (dbias != nullptr) o.f32(*dbias, "dbias");
  const auto [K, OC] = weight_dims(weight, layout, op);
  const int64_t N = rows_of(inp, K, op, "inp");
  const int64_t width = block.width > 0 ? block.width : OC;
  expect_numel(dout, N * width, op, "dout");
  expect_numel(dweight, weight.numel(), op, "dweight");
  if (dinp != nullptr) expect_numel(*dinp, N * K, op, "dinp");
  if (dbias != nullptr) expect_numel(*dbias, OC, op, "dbias");
  if (!o.on_cpu()) {
    o.backend()->matmul_backward(dinp, dweight, dbias, dout, block.first, width, inp, weight, N, K, OC, layout,
                                 accumulate_dinp);
    return;
  }
  cpu::matmul_backward(dinp ? dinp->data<float>() : nullptr, dweight.data<float>(),
                       dbias ? dbias->data<float>() : nullptr, dout.data<float>() + block.first, width,
                       inp.data<float>(), weight.data<float>(), N, K, OC, layout, accumulate_dinp);
}

void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                       const Tensor& weight, const Tensor& bias, float eps) {
  const char* op = "layernorm_forward";
  Operands o(op);
  o.value(inp, "inp").value(out, "out").value(weight, "weight").value(bias, "bias").f32(mean, "mean").f32(rstd, "rstd");
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(out, N * C, op, "out");
  expect_numel(mean, N, op, "mean");
  expect_numel(rstd, N, op, "rstd");
  expect_numel(bias, C, op, "bias");
  if (!o.on_cpu()) {
    o.backend()->layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
    return;
  }
  cpu::layernorm_forward(out.data<float>(), mean.data<float>(), rstd.data<float>(), inp.data<float>(),
                         weight.data<float>(), bias.data<float>(), N, C, eps);
}

void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                        const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  const char* op = "layernorm_backward";
  Operands o(op);
  o.value(dinp, "dinp").value(dout, "dout").value(inp, "inp").value(weight, "weight");
  o.f32(dweight, "dweight").f32(dbias, "dbias").f32(mean, "mean").f32(rstd, "rstd");
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(dinp, N * C, op, "dinp");
  expect_numel(dout, N * C, op, "dout");
  expect_numel(dweight, C, op, "dweight");
  expect_numel(dbias, C, op, "dbias");
  if (!o.on_cpu()) {
    o.backend()->layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    return;
  }
  cpu::layernorm_backward(dinp.data<float>(), dweight.data<float>(), dbias.data<float>(), dout.data<float>(),
                          inp.data<float>(), weight.data<float>(), mean.data<float>(), rstd.data<float>(), N, C);
}

void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight, float eps) {
  const char* op = "rmsnorm_forward";
  Operands o(op);
  o.value(inp, "inp").value(out, "out").value(weight, "weight").f32(rstd, "rstd");
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(out, N * C, op, "out");
  expect_numel(rstd, N, op, "rstd");
  if (!o.on_cpu()) {
    o.backend()->rmsnorm_forward(out, rstd, inp, weight, N, C, eps);
    return;
  }
  cpu::rmsnorm_forward(out.data<float>(), rstd.data<float>(), inp.data<float>(), weight.data<float>(), N, C, eps);
}

void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd) {
  const char* op = "rmsnorm_backward";
  Operands o(op);
  o.value(dinp, "dinp").value(dout, "dout").value(inp, "inp").value(weight, "weight");
  o.f32(dweight, "dweight").f32(rstd, "rstd");
  const int64_t C = weight.numel();
  const int64_t N = rows_of(inp, C, op, "inp");
  expect_numel(dinp, N * C, op, "dinp");
  expect_numel(dout, N * C, op, "dout");
  expect_numel(dweight, C, op, "dweight");
  if (!o.on_cpu()) {
    o.backend()->rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C);
    return;
  }
  cpu::rmsnorm_backward(dinp.data<float>(), dweight.data<float>(), dout.data<float>(), inp.data<float>(),
                        weight.data<float>(), rstd.data<float>(), N, C);
}

void gelu_forward(const Tensor& out, const Tensor& inp) {
  Operands o("gelu_forward");
  o.value(inp, "inp").value(out, "out");
  expect_numel(out, inp.numel(), "gelu_forward", "out");
  if (!o.on_cpu()) {
    o.backend()->gelu_forward(out, inp);
    return;
  }
  cpu::gelu_forward(out.data<float>(), inp.data<float>(), inp.numel());
}

void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) {
  Operands o("gelu_backward");
  o.value(dinp, "dinp").value(inp, "inp").value(dout, "dout");
  expect_numel(dinp, inp.numel(), "gelu_backward", "dinp");
  expect_numel(dout, inp.numel(), "gelu_backward", "dout");
  if (!o.on_cpu()) {
    o.backend()->gelu_backward(dinp, inp, dout);
    return;
  }
  cpu::gelu_backward(dinp.data<float>(), inp.data<float>(), dout.data<float>(), inp.numel());
}

void swiglu_forward(const Tensor& out, const Tensor& inp) {
  const char* op = "swiglu_forward";
  Operands o(op);
  o.value(inp, "inp").value(out, "out");
  const int64_t F = out.size(-1);
  const int64_t N = rows_of(inp, 2 * F, op, "inp");
  expect_numel(out, N * F, op, "out");
  if (!o.on_cpu()) {
    o.backend()->swiglu_forward(out, inp, N, F);
    return;
  }
  cpu::swiglu_forward(out.data<float>(), inp.data<float>(), N, F);
}

void swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) {
  const char* op = "swiglu_backward";
  Operands o(op);
  o.value(dinp, "dinp").value(inp, "inp").value(dout, "dout");
  const int64_t F = dout.size(-1);
  const int64_t N = rows_of(inp, 2 * F, op, "inp");
  expect_numel(dinp, N * 2 * F, op, "dinp");
  if (!o.on_cpu()) {
    o.backend()->swiglu_backward(dinp, inp, dout, N, F);
    return;
  }
  cpu::swiglu_backward(dinp.data<float>(), inp.data<float>(), dout.data<float>(), N, F);
}

namespace {
int64_t head_dim_of(const Tensor& qkv, int64_t B, int64_t T, int64_t H, int64_t KV, const char* op) {
  TESSEL_CHECK(H > 0 && KV > 0 && H % KV == 0) << op << ": heads " << H << " / kv_heads " << KV;
  const int64_t width = rows_of(qkv, B * T, op, "qkv");
  TESSEL_CHECK(width % (H + 2 * KV) == 0) << op << ": qkv row width " << width << " is not (H + 2·KV)·D";
  return width / (H + 2 * KV);
}

// q and k heads are contiguous at the start of each row: both rotate as H + KV heads.
void rope(const Tensor& x, int64_t B, int64_t T, int64_t H, int64_t KV, float theta, bool backward) {
  const char* op = backward ? "rope_backward" : "rope_forward";
  Operands o(op);
  o.value(x, "qkv");
  const int64_t D = head_dim_of(x, B, T, H, KV, op);
  TESSEL_CHECK(D % 2 == 0) << op << ": head dim " << D << " must be even";
  const int64_t ld = (H + 2 * KV) * D;
  if (!o.on_cpu()) {
    o.backend()->rope(x, ld, B, T, H + KV, D, theta, backward);
  } else if (backward) {
    cpu::rope_backward(x.data<float>(), ld, B, T, H + KV, D, theta);
  } else {
    cpu::rope_forward(x.data<float>(), ld, B, T, H + KV, D, theta);
  }
}
}  // namespace

void rope_forward(const Tensor& qkv, int64_t B, int64_t T, int64_t H, int64_t KV, float theta) {
  rope(qkv, B, T, H, KV, theta, false);
}

void rope_backward(const Tensor& dqkv, int64_t B, int64_t T, int64_t H, int64_t KV, float theta) {
  rope(dqkv, B, T, H, KV, theta, true);
}

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B, int64_t T, int64_t H,
                       int64_t KV) {
  const char* op = "attention_forward";
  Operands o(op);
  o.value(qkv, "qkv").value(out, "out").f32(lse, "lse");
  const int64_t D = head_dim_of(qkv, B, T, H, KV, op);
  expect_numel(out, B * T * H * D, op, "out");
  expect_numel(lse, B * H * T, op, "lse");
  if (!o.on_cpu()) {
    o.backend()->attention_forward(out, lse, qkv, B, T, H, KV, D);
    return;
  }
  cpu::attention_forward(out.data<float>(), lse.data<float>(), qkv.data<float>(), B, T, H, KV, D);
}

void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                        int64_t B, int64_t T, int64_t H, int64_t KV) {
  const char* op = "attention_backward";
  Operands o(op);
  o.value(dqkv, "dqkv").value(dout, "dout").value(qkv, "qkv").value(out, "out").f32(lse, "lse");
  const int64_t D = head_dim_of(qkv, B, T, H, KV, op);
  expect_numel(dqkv, qkv.numel(), op, "dqkv");
  expect_numel(dout, B * T * H * D, op, "dout");
  expect_numel(out, B * T * H * D, op, "out");
  expect_numel(lse, B * H * T, op, "lse");
  if (!o.on_cpu()) {
    o.backend()->attention_backward(dqkv, dout, qkv, out, lse, B, T, H, KV, D);
    return;
  }
  cpu::attention_backward(dqkv.data<float>(), dout.data<float>(), qkv.data<float>(), out.data<float>(),
                          lse.data<float>(), B, T, H, KV, D);
}

void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b) {
  Operands o("residual_forward");
  o.value(out, "out").value(a, "a").value(b, "b");
  expect_numel(a, out.numel(), "residual_forward", "a");
  expect_numel(b, out.numel(), "residual_forward", "b");
  if (!o.on_cpu()) {
    o.backend()->residual_forward(out, a, b);
    return;
  }
  cpu::residual_forward(out.data<float>(), a.data<float>(), b.data<float>(), out.numel());
}

namespace {

// The (M) rows/scale and (rows, C) operands of the MoE permutation ops, checked.
void check_permutation(const char* op, Operands& o, const Tensor& permuted, const Tensor& tokens, const Tensor& rows,
                       const Tensor* scale) {
  o.i32(rows, "rows");
  if (scale != nullptr) o.f32(*scale, "scale");
  TESSEL_CHECK(permuted.dim() == 2 && tokens.dim() == 2 && permuted.size(1) == tokens.size(1))
      << op << ": expected (M, C) and (N, C), got " << permuted.str() << " and " << tokens.str();
  expect_numel(rows, permuted.size(0), op, "rows");
  if (scale != nullptr) expect_numel(*scale, permuted.size(0), op, "scale");
  if (!o.on_cpu()) return;  // a device's row indices are the caller's to get right (not read back here)
  const int32_t* r = rows.data<int32_t>();
  for (int64_t i = 0; i < rows.numel(); ++i) {
    TESSEL_CHECK(r[i] >= 0 && r[i] < tokens.size(0))
        << op << ": rows[" << i << "] = " << r[i] << " is outside [0, " << tokens.size(0) << ")";
  }
}

}  // namespace

void moe_gather_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale) {
  const char* op = "moe_gather_rows";
  Operands o(op);
  o.value(out, "out").value(inp, "inp");
  check_permutation(op, o, out, inp, rows, scale);
  if (!o.on_cpu()) {
    o.backend()->moe_gather_rows(out, inp, rows, scale, out.size(0), out.size(1));
    return;
  }
  cpu::moe_gather_rows(out.data<float>(), inp.data<float>(), rows.data<int32_t>(),
                       scale ? scale->data<float>() : nullptr, out.size(0), out.size(1));
}

void moe_scatter_add_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale) {
  const char* op = "moe_scatter_add_rows";
  Operands o(op);
  o.value(out, "out").value(inp, "inp");
  check_permutation(op, o, inp, out, rows, scale);
  if (!o.on_cpu()) {
    o.backend()->moe_scatter_add_rows(out, inp, rows, scale, out.size(0), inp.size(0), inp.size(1));
    return;
  }
  cpu::moe_scatter_add_rows(out.data<float>(), inp.data<float>(), rows.data<int32_t>(),
                            scale ? scale->data<float>() : nullptr, inp.size(0), inp.size(1));
}

void moe_row_dots(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& rows) {
  const char* op = "moe_row_dots";
  Operands o(op);
  o.value(a, "a").value(b, "b").f32(out, "out");
  check_permutation(op, o, a, b, rows, nullptr);
  expect_numel(out, a.size(0), op, "out");
  if (!o.on_cpu()) {
    o.backend()->moe_row_dots(out, a, b, rows, a.size(0), a.size(1));
    return;
  }
  cpu::moe_row_dots(out.data<float>(), a.data<float>(), b.data<float>(), rows.data<int32_t>(), a.size(0), a.size(1));
}

int64_t classifier_workspace_numel(int64_t N, int64_t V) { return cpu::classifier_workspace_floats(N, V); }

void classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                                 const Tensor& weight, const Tensor& targets, float dloss, const Tensor& workspace) {
  const char* op = "classifier_forward_backward";
  Operands o(op);
  o.value(x, "x").value(weight, "weight").f32(losses, "losses").i32(targets, "targets");
  TESSEL_CHECK(weight.dim() == 2) << op << ": weight must be (V, C), got " << weight.str();
  const int64_t V = weight.size(0), C = weight.size(1);
  const int64_t N = rows_of(x, C, op, "x");
  expect_numel(losses, N, op, "losses");
  expect_numel(targets, N, op, "targets");
  TESSEL_CHECK((dx == nullptr) == (dweight == nullptr)) << op << ": pass both dx and dweight or neither";
  if (dx != nullptr) {
    o.value(*dx, "dx").f32(*dweight, "dweight");
    expect_numel(*dx, N * C, op, "dx");
    expect_numel(*dweight, V * C, op, "dweight");
  }
  if (!o.on_cpu()) {
    o.any(workspace, "workspace");  // any dtype: the device's workspace is counted in bytes
    const int64_t need = o.backend()->classifier_workspace_bytes(N, V, static_cast<int64_t>(dtype_size(x.dtype())));
    TESSEL_CHECK(static_cast<int64_t>(workspace.nbytes()) >= need)
        << op << ": workspace " << workspace.str() << " is smaller than " << need << " bytes";
    o.backend()->classifier_forward_backward(losses, dx, dweight, x, weight, targets, N, C, V, dloss, workspace);
    return;
  }
  o.f32(workspace, "workspace");
  const int32_t* tgt = targets.data<int32_t>();
  for (int64_t i = 0; i < N; ++i) {
    TESSEL_CHECK(tgt[i] >= 0 && tgt[i] < V)
        << op << ": target id " << tgt[i] << " at position " << i << " is outside the vocabulary [0, " << V << ")";
  }
  TESSEL_CHECK(workspace.numel() >= classifier_workspace_numel(N, V))
      << op << ": workspace " << workspace.str() << " is smaller than " << classifier_workspace_numel(N, V)
      << " elements";
  cpu::classifier_forward_backward(losses.data<float>(), dx ? dx->data<float>() : nullptr,
                                   dweight ? dweight->data<float>() : nullptr, x.data<float>(), weight.data<float>(),
                                   tgt, N, C, V, dloss, workspace.data<float>());
}

void vocab_loss_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, const Tensor& logits,
                      const Tensor& targets, int64_t vocab_start) {
  const char* op = "vocab_loss_stats";
  Operands o(op);
  o.value(logits, "logits").i32(targets, "targets").f32(row_max, "row_max").f32(row_sum, "row_sum");
  o.f32(target_logit, "target_logit");
  TESSEL_CHECK(logits.dim() == 2) << op << ": logits must be (rows, Vl), got " << logits.str();
  const int64_t rows = logits.size(0), Vl = logits.size(1);
  for (const Tensor* t : {&targets, &row_max, &row_sum, &target_logit}) expect_numel(*t, rows, op, "a row statistic");
  if (!o.on_cpu()) {
    o.backend()->vocab_loss_stats(row_max, row_sum, target_logit, logits, targets, vocab_start);
    return;
  }
  cpu::vocab_loss_stats(row_max.data<float>(), row_sum.data<float>(), target_logit.data<float>(), logits.data<float>(),
                        targets.data<int32_t>(), rows, Vl, vocab_start);
}

void vocab_loss_rescale(const Tensor& row_sum, const Tensor& local_max, const Tensor& row_max) {
  const char* op = "vocab_loss_rescale";
  Operands o(op);
  o.f32(row_sum, "row_sum").f32(local_max, "local_max").f32(row_max, "row_max");
  expect_numel(local_max, row_sum.numel(), op, "local_max");
  expect_numel(row_max, row_sum.numel(), op, "row_max");
  if (!o.on_cpu()) {
    o.backend()->vocab_loss_rescale(row_sum, local_max, row_max);
    return;
  }
  cpu::vocab_loss_rescale(row_sum.data<float>(), local_max.data<float>(), row_max.data<float>(), row_sum.numel());
}

void vocab_loss_finish(const Tensor& losses, const Tensor& row_sum, const Tensor& row_max, const Tensor& target_logit) {
  const char* op = "vocab_loss_finish";
  Operands o(op);
  o.f32(losses, "losses").f32(row_sum, "row_sum").f32(row_max, "row_max").f32(target_logit, "target_logit");
  for (const Tensor* t : {&row_sum, &row_max, &target_logit}) expect_numel(*t, losses.numel(), op, "a row statistic");
  if (!o.on_cpu()) {
    o.backend()->vocab_loss_finish(losses, row_sum, row_max, target_logit);
    return;
  }
  cpu::vocab_loss_finish(losses.data<float>(), row_sum.data<float>(), row_max.data<float>(), target_logit.data<float>(),
                         losses.numel());
}

void vocab_loss_dlogits(const Tensor& logits, const Tensor& targets, const Tensor& row_max, const Tensor& row_sum,
                        int64_t vocab_start, float dloss) {
  const char* op = "vocab_loss_dlogits";
  Operands o(op);
  o.value(logits, "logits").i32(targets, "targets").f32(row_max, "row_max").f32(row_sum, "row_sum");
  TESSEL_CHECK(logits.dim() == 2) << op << ": logits must be (rows, Vl), got " << logits.str();
  const int64_t rows = logits.size(0), Vl = logits.size(1);
  for (const Tensor* t : {&targets, &row_max, &row_sum}) expect_numel(*t, rows, op, "a row statistic");
  if (!o.on_cpu()) {
    o.backend()->vocab_loss_dlogits(logits, targets, row_max, row_sum, vocab_start, dloss);
    return;
  }
  cpu::vocab_loss_dlogits(logits.data<float>(), targets.data<int32_t>(), row_max.data<float>(), row_sum.data<float>(),
                          rows, Vl, vocab_start, dloss);
}

}  // namespace ops
}  // namespace tessel

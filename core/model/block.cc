#include "core/model/block.h"

namespace tessel {
namespace {

LinearRef linear_ref(const ParameterStore& store, const std::string& prefix, bool bias,
                     ops::ColumnBlock block) {
  LinearRef l;
  l.w = store.param(prefix + ".weight");
  l.dw = store.grad(prefix + ".weight");
  if (bias) {
    l.b = store.param(prefix + ".bias");
    l.db = store.grad(prefix + ".bias");
  }
  l.block = block;
  return l;
}

}  // namespace

NormRef norm_ref(const ParameterStore& store, const std::string& weight_name,
                 const std::string& bias_name, bool layernorm) {
  NormRef n;
  n.w = store.param(weight_name);
  n.dw = store.grad(weight_name);
  if (layernorm) {
    n.b = store.param(bias_name);
    n.db = store.grad(bias_name);
  }
  return n;
}

BlockCache BlockCache::allocate(const ModelConfig& c, int64_t B, int64_t T) {
  const int64_t N = B * T, C = c.d_model, D = c.head_dim();
  const int64_t ffn_in = c.activation == "swiglu" ? 2 * c.ffn_dim : c.ffn_dim;
  BlockCache k;
  k.ln1 = Tensor::empty({N, C}, DType::F32);
  k.ln1_mean = Tensor::empty({N}, DType::F32);
  k.ln1_rstd = Tensor::empty({N}, DType::F32);
  k.qkv = Tensor::empty({N, (c.heads + 2 * c.kv_heads) * D}, DType::F32);
  k.att = Tensor::empty({N, c.heads * D}, DType::F32);
  k.lse = Tensor::empty({B, c.heads, T}, DType::F32);
  k.x_mid = Tensor::empty({N, C}, DType::F32);
  k.ln2 = Tensor::empty({N, C}, DType::F32);
  k.ln2_mean = Tensor::empty({N}, DType::F32);
  k.ln2_rstd = Tensor::empty({N}, DType::F32);
  k.ffn_pre = Tensor::empty({N, ffn_in}, DType::F32);
  k.ffn_act = Tensor::empty({N, c.ffn_dim}, DType::F32);
  return k;
}

BlockScratch BlockScratch::allocate(const ModelConfig& c, int64_t B, int64_t T) {
  const int64_t N = B * T, D = c.head_dim();
  const int64_t ffn_in = c.activation == "swiglu" ? 2 * c.ffn_dim : c.ffn_dim;
  BlockScratch s;
  s.d_ln = Tensor::empty({N, c.d_model}, DType::F32);
  s.d_qkv = Tensor::empty({N, (c.heads + 2 * c.kv_heads) * D}, DType::F32);
  s.d_att = Tensor::empty({N, c.heads * D}, DType::F32);
  s.d_ffn_pre = Tensor::empty({N, ffn_in}, DType::F32);
  s.d_ffn_act = Tensor::empty({N, c.ffn_dim}, DType::F32);
  return s;
}

Block::Block(const ModelConfig& c, const ParameterStore& store, int64_t layer) : config_(c) {
  const ModelNames n = model_names(c);
  const bool layernorm = c.norm == "layernorm";
  const int64_t D = c.head_dim(), H = c.heads, KV = c.kv_heads, F = c.ffn_dim;
  layout_ = n.hf_gpt2 ? ops::WeightLayout::kInOut : ops::WeightLayout::kOutIn;
  ln1_ = norm_ref(store, n.layer(layer, "ln_1.weight", "input_layernorm.weight"),
                  n.layer(layer, "ln_1.bias", "input_layernorm.bias"), layernorm);
  ln2_ = norm_ref(store, n.layer(layer, "ln_2.weight", "post_attention_layernorm.weight"),
                  n.layer(layer, "ln_2.bias", "post_attention_layernorm.bias"), layernorm);
  const int64_t qkv_width = (H + 2 * KV) * D;
  if (n.hf_gpt2) {
    qkv_.push_back(linear_ref(store, n.layer(layer, "attn.c_attn", ""), c.bias, {}));
    attn_out_ = linear_ref(store, n.layer(layer, "attn.c_proj", ""), c.bias, {});
    ffn_in_.push_back(linear_ref(store, n.layer(layer, "mlp.c_fc", ""), c.bias, {}));
    ffn_out_ = linear_ref(store, n.layer(layer, "mlp.c_proj", ""), c.bias, {});
  } else {
    qkv_.push_back(linear_ref(store, n.layer(layer, "", "self_attn.q_proj"), c.bias, {0, qkv_width}));
    qkv_.push_back(linear_ref(store, n.layer(layer, "", "self_attn.k_proj"), c.bias, {H * D, qkv_width}));
    qkv_.push_back(linear_ref(store, n.layer(layer, "", "self_attn.v_proj"), c.bias,
                              {(H + KV) * D, qkv_width}));
    attn_out_ = linear_ref(store, n.layer(layer, "", "self_attn.o_proj"), c.bias, {});
    if (c.activation == "swiglu") {
      ffn_in_.push_back(linear_ref(store, n.layer(layer, "", "mlp.gate_proj"), c.bias, {0, 2 * F}));
      ffn_in_.push_back(linear_ref(store, n.layer(layer, "", "mlp.up_proj"), c.bias, {F, 2 * F}));
    } else {
      ffn_in_.push_back(linear_ref(store, n.layer(layer, "", "mlp.up_proj"), c.bias, {}));
    }
    ffn_out_ = linear_ref(store, n.layer(layer, "", "mlp.down_proj"), c.bias, {});
  }
}

void Block::norm_forward(const NormRef& n, const Tensor& out, const Tensor& mean,
                         const Tensor& rstd, const Tensor& inp) const {
  const float eps = static_cast<float>(config_.norm_eps);
  if (n.b.defined()) {
    ops::layernorm_forward(out, mean, rstd, inp, n.w, n.b, eps);
  } else {
    ops::rmsnorm_forward(out, rstd, inp, n.w, eps);
  }
}

void Block::norm_backward(const NormRef& n, const Tensor& dinp, const Tensor& dout,
                          const Tensor& inp, const Tensor& mean, const Tensor& rstd) const {
  if (n.b.defined()) {
    ops::layernorm_backward(dinp, n.dw, n.db, dout, inp, n.w, mean, rstd);
  } else {
    ops::rmsnorm_backward(dinp, n.dw, dout, inp, n.w, rstd);
  }
}

void Block::linear_forward(const LinearRef& l, const Tensor& out, const Tensor& inp) const {
  ops::matmul_forward(out, inp, l.w, l.b.defined() ? &l.b : nullptr, layout_, l.block);
}

void Block::linear_backward(const LinearRef& l, const Tensor* dinp, const Tensor& dout,
                            const Tensor& inp, bool accumulate_dinp) const {
  ops::matmul_backward(dinp, l.dw, l.db.defined() ? &l.db : nullptr, dout, inp, l.w, layout_,
                       accumulate_dinp, l.block);
}

void Block::forward(const Tensor& x_in, const Tensor& x_out, BlockCache& k, int64_t B,
                    int64_t T) const {
  const ModelConfig& c = config_;
  norm_forward(ln1_, k.ln1, k.ln1_mean, k.ln1_rstd, x_in);
  for (const LinearRef& l : qkv_) linear_forward(l, k.qkv, k.ln1);
  if (c.position == "rope") ops::rope_forward(k.qkv, B, T, c.heads, c.kv_heads, static_cast<float>(c.rope_theta));
  ops::attention_forward(k.att, k.lse, k.qkv, B, T, c.heads, c.kv_heads);
  // x_mid = x_in + att · W_o: the projection lands in x_mid, then the residual is added.
  linear_forward(attn_out_, k.x_mid, k.att);
  ops::residual_forward(k.x_mid, k.x_mid, x_in);
  norm_forward(ln2_, k.ln2, k.ln2_mean, k.ln2_rstd, k.x_mid);
  for (const LinearRef& l : ffn_in_) linear_forward(l, k.ffn_pre, k.ln2);
  if (c.activation == "swiglu") {
    ops::swiglu_forward(k.ffn_act, k.ffn_pre);
  } else {
    ops::gelu_forward(k.ffn_act, k.ffn_pre);
  }
  linear_forward(ffn_out_, x_out, k.ffn_act);
  ops::residual_forward(x_out, x_out, k.x_mid);
}

void Block::backward(const Tensor& dx, const Tensor& x_in, const BlockCache& k,
                     BlockScratch& s, int64_t B, int64_t T) const {
  const ModelConfig& c = config_;
  // FFN branch: dx is the gradient of x_out, which flows unchanged to x_mid (residual) and
  // into the FFN output projection.
  linear_backward(ffn_out_, &s.d_ffn_act, dx, k.ffn_act, false);
  if (c.activation == "swiglu") {
    ops::swiglu_backward(s.d_ffn_pre, k.ffn_pre, s.d_ffn_act);
  } else {
    ops::gelu_backward(s.d_ffn_pre, k.ffn_pre, s.d_ffn_act);
  }
  for (size_t i = 0; i < ffn_in_.size(); ++i) linear_backward(ffn_in_[i], &s.d_ln, s.d_ffn_pre, k.ln2, i > 0);
  norm_backward(ln2_, dx, s.d_ln, k.x_mid, k.ln2_mean, k.ln2_rstd);  // dx += ...: now d x_mid
  // Attention branch.
  linear_backward(attn_out_, &s.d_att, dx, k.att, false);
  ops::attention_backward(s.d_qkv, s.d_att, k.qkv, k.att, k.lse, B, T, c.heads, c.kv_heads);
  if (c.position == "rope") ops::rope_backward(s.d_qkv, B, T, c.heads, c.kv_heads, static_cast<float>(c.rope_theta));
  for (size_t i = 0; i < qkv_.size(); ++i) linear_backward(qkv_[i], &s.d_ln, s.d_qkv, k.ln1, i > 0);
  norm_backward(ln1_, dx, s.d_ln, x_in, k.ln1_mean, k.ln1_rstd);  // dx += ...: now d x_in
}

}  // namespace tessel

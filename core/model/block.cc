#include "core/model/block.h"

#include "core/device_backend.h"

namespace tessel {
namespace {

LinearRef linear_ref(const ParameterStore& store, const std::string& prefix, bool bias, ops::ColumnBlock block) {
  LinearRef l;
  l.w = store.compute_param(prefix + ".weight");
  l.dw = store.grad(prefix + ".weight");
  if (bias) {
    l.b = store.compute_param(prefix + ".bias");
    l.db = store.grad(prefix + ".bias");
  }
  l.block = block;
  return l;
}

// Columns [first, first + narrow.size(1)) of every row of wide (N, W) and the rows of narrow:
// copied (add false) or added (add true), into wide or out of it.
void move_columns(const Tensor& wide, const Tensor& narrow, int64_t first, bool into_wide, bool add) {
  const int64_t N = wide.size(0), W = wide.size(1), w = narrow.size(1);
  if (wide.device().is_cpu()) {
    float* a = wide.data<float>();
    float* b = narrow.data<float>();
    for (int64_t r = 0; r < N; ++r) {
      float* x = a + r * W + first;
      float* y = b + r * w;
      for (int64_t i = 0; i < w; ++i) {
        if (into_wide) {
          x[i] = add ? x[i] + y[i] : y[i];
        } else {
          y[i] = add ? y[i] + x[i] : x[i];
        }
      }
    }
    return;
  }
  for (int64_t r = 0; r < N; ++r) {  // a device's rows: one queued copy or add each
    const Tensor x = wide.view(r * W + first, {w}), y = narrow.view(r * w, {w});
    const Tensor& to = into_wide ? x : y;
    const Tensor& from = into_wide ? y : x;
    if (add) {
      ops::residual_forward(to, to, from);
    } else {
      to.copy_from(from);
    }
  }
}

}  // namespace

NormRef norm_ref(const ParameterStore& store, const std::string& weight_name, const std::string& bias_name,
                 bool layernorm) {
  NormRef n;
  n.w = store.compute_param(weight_name);
  n.dw = store.grad(weight_name);
  if (layernorm) {
    n.b = store.compute_param(bias_name);
    n.db = store.grad(bias_name);
  }
  return n;
}

BlockDims BlockDims::of(const ModelConfig& c, int64_t B, int64_t T, const TpContext& tp) {
  const int64_t P = tp.size();
  BlockDims d;
  d.N = B * T;
  d.Nl = tp.local_rows();
  d.C = c.d_model;
  d.D = c.head_dim();
  d.H = c.heads / P;
  d.KV = c.kv_heads >= P ? c.kv_heads / P : 1;  // fewer kv heads than ranks: one, shared
  d.F = c.ffn_dim / P;
  d.ffn_in = c.activation == Activation::kSwiGlu ? 2 * d.F : d.F;
  d.moe = MoeDims::of(c, static_cast<int>(P));
  return d;
}

BlockCache BlockCache::allocate(const BlockDims& d, int64_t B, int64_t T, bool store_attention, DeviceBackend* device,
                                DType values, bool dense, bool moe, int ep) {
  BlockCache k;
  k.ln1 = empty_on(device, {d.Nl, d.C}, values);
  k.ln1_mean = empty_on(device, {d.Nl}, DType::F32);
  k.ln1_rstd = empty_on(device, {d.Nl}, DType::F32);
  k.qkv = empty_on(device, {d.N, (d.H + 2 * d.KV) * d.D}, values);
  if (store_attention) {
    k.att = empty_on(device, {d.N, d.H * d.D}, values);
    k.lse = empty_on(device, {B, d.H, T}, DType::F32);
  }
  k.x_mid = empty_on(device, {d.Nl, d.C}, values);
  k.ln2 = empty_on(device, {d.Nl, d.C}, values);
  k.ln2_mean = empty_on(device, {d.Nl}, DType::F32);
  k.ln2_rstd = empty_on(device, {d.Nl}, DType::F32);
  if (dense) {
    k.ffn_pre = empty_on(device, {d.N, d.ffn_in}, values);
    k.ffn_act = empty_on(device, {d.N, d.F}, values);
  }
  if (moe) k.moe = MoeCache::allocate(d.moe, d.N, d.C, ep, device, values);
  return k;
}

int64_t BlockCache::bytes() const {
  int64_t n = 0;
  for (const Tensor* t :
       {&ln1, &ln1_mean, &ln1_rstd, &qkv, &att, &lse, &x_mid, &ln2, &ln2_mean, &ln2_rstd, &ffn_pre, &ffn_act}) {
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  }
  return n + moe.bytes();
}

BlockScratch BlockScratch::allocate(const BlockDims& d, int64_t B, int64_t T, DeviceBackend* device, DType values,
                                    bool moe, int ep) {
  BlockScratch s;
  s.d_ln = empty_on(device, {d.Nl, d.C}, values);
  s.d_qkv = empty_on(device, {d.N, (d.H + 2 * d.KV) * d.D}, values);
  s.d_att = empty_on(device, {d.N, d.H * d.D}, values);
  s.d_ffn_pre = empty_on(device, {d.N, d.ffn_in}, values);
  s.d_ffn_act = empty_on(device, {d.N, d.F}, values);
  s.full = empty_on(device, {d.N, d.C}, values);
  s.partial = empty_on(device, {d.N, d.C}, values);
  s.att = empty_on(device, {d.N, d.H * d.D}, values);
  s.lse = empty_on(device, {B, d.H, T}, DType::F32);
  if (moe) {
    s.moe = MoeScratch::allocate(d.moe, d.N, d.C, ep, device, values);
    s.moe_in = empty_on(device, {d.N, d.C}, values);
  }
  return s;
}

Block::Block(const ModelConfig& c, const ParameterStore& store, int64_t layer, TpContext& tp, MoeLayerStats* moe_stats,
             Communicator* ep_group)
    : config_(c),
      tp_(tp),
      H_(c.heads / tp.size()),
      KV_(c.kv_heads >= tp.size() ? c.kv_heads / tp.size() : 1),
      kv_source_(c.kv_source(layer) == layer) {
  const ModelNames n = model_names(c);
  const bool layernorm = c.norm == Norm::kLayerNorm;
  const int64_t D = c.head_dim(), H = H_, KV = KV_, F = c.ffn_dim / tp.size();
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
    if (kv_source_) {
      qkv_.push_back(linear_ref(store, n.layer(layer, "", "self_attn.k_proj"), c.bias, {H * D, qkv_width}));
      qkv_.push_back(linear_ref(store, n.layer(layer, "", "self_attn.v_proj"), c.bias, {(H + KV) * D, qkv_width}));
    }
    attn_out_ = linear_ref(store, n.layer(layer, "", "self_attn.o_proj"), c.bias, {});
    if (c.moe.is_moe_layer(layer)) {
      moe_ = std::make_unique<MoeFfn>(c, store, layer, tp, moe_stats, ep_group);
      return;
    }
    if (c.activation == Activation::kSwiGlu) {
      ffn_in_.push_back(linear_ref(store, n.layer(layer, "", "mlp.gate_proj"), c.bias, {0, 2 * F}));
      ffn_in_.push_back(linear_ref(store, n.layer(layer, "", "mlp.up_proj"), c.bias, {F, 2 * F}));
    } else {
      ffn_in_.push_back(linear_ref(store, n.layer(layer, "", "mlp.up_proj"), c.bias, {}));
    }
    ffn_out_ = linear_ref(store, n.layer(layer, "", "mlp.down_proj"), c.bias, {});
  }
}

void Block::norm_forward(const NormRef& n, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                         const Tensor& inp) const {
  const float eps = static_cast<float>(config_.norm_eps);
  if (n.b.defined()) {
    ops::layernorm_forward(out, mean, rstd, inp, n.w, n.b, eps);
  } else {
    ops::rmsnorm_forward(out, rstd, inp, n.w, eps);
  }
}

void Block::norm_backward(const NormRef& n, const Tensor& dinp, const Tensor& dout, const Tensor& inp,
                          const Tensor& mean, const Tensor& rstd) const {
  if (n.b.defined()) {
    ops::layernorm_backward(dinp, n.dw, n.db, dout, inp, n.w, mean, rstd);
  } else {
    ops::rmsnorm_backward(dinp, n.dw, dout, inp, n.w, rstd);
  }
}

void Block::linear_forward(const LinearRef& l, const Tensor& out, const Tensor& inp, bool add_bias) const {
  ops::matmul_forward(out, inp, l.w, l.b.defined() && add_bias ? &l.b : nullptr, layout_, l.block);
}

void Block::linear_backward(const LinearRef& l, const Tensor* dinp, const Tensor& dout, const Tensor& inp,
                            bool accumulate_dinp) const {
  ops::matmul_backward(dinp, l.dw, l.db.defined() ? &l.db : nullptr, dout, inp, l.w, layout_, accumulate_dinp, l.block);
}

const Tensor& Block::full_rows(const Tensor& local, const Tensor& scratch) const {
  if (!tp_.sequence_parallel()) return local;
  tp_.gather_to_full(local, scratch);
  return scratch;
}

void Block::forward(const Tensor& x_in, const Tensor& x_out, BlockCache& k, BlockScratch& s, int64_t B, int64_t T,
                    const Tensor* shared_kv) const {
  const ModelConfig& c = config_;
  const bool sp = tp_.sequence_parallel();
  const Tensor& att = k.att.defined() ? k.att : s.att;
  const Tensor& lse = k.lse.defined() ? k.lse : s.lse;
  norm_forward(ln1_, k.ln1, k.ln1_mean, k.ln1_rstd, x_in);
  const Tensor& ln1 = full_rows(k.ln1, s.full);
  for (const LinearRef& l : qkv_) linear_forward(l, k.qkv, ln1);
  if (c.position == Position::kRope) ops::rope_forward(k.qkv, B, T, H_, KV_, static_cast<float>(c.rope_theta));
  // Cross-layer attention: the group's first layer hands its rotated keys and values on; the
  // others take them in place of their own (their k/v columns held nothing).
  if (shared_kv != nullptr) move_columns(k.qkv, *shared_kv, H_ * c.head_dim(), !kv_source_, false);
  ops::attention_forward(att, lse, k.qkv, B, T, H_, KV_);
  // x_mid = x_in + att · W_o: the (partial) projection, reduced over the group, then the residual.
  linear_forward(attn_out_, sp ? s.partial : k.x_mid, att, tp_.rank() == 0);
  tp_.reduce_to_local(sp ? s.partial : k.x_mid, k.x_mid);
  ops::residual_forward(k.x_mid, k.x_mid, x_in);
  norm_forward(ln2_, k.ln2, k.ln2_mean, k.ln2_rstd, k.x_mid);
  const Tensor& ln2 = full_rows(k.ln2, s.full);
  if (moe_) {
    moe_->forward(ln2, sp ? s.partial : x_out, k.moe);
  } else {
    for (const LinearRef& l : ffn_in_) linear_forward(l, k.ffn_pre, ln2);
    if (c.activation == Activation::kSwiGlu) {
      ops::swiglu_forward(k.ffn_act, k.ffn_pre);
    } else {
      ops::gelu_forward(k.ffn_act, k.ffn_pre);
    }
    linear_forward(ffn_out_, sp ? s.partial : x_out, k.ffn_act, tp_.rank() == 0);
  }
  tp_.reduce_to_local(sp ? s.partial : x_out, x_out);
  ops::residual_forward(x_out, x_out, k.x_mid);
}

void Block::backward(const Tensor& dx, const Tensor& x_in, const BlockCache& k, BlockScratch& s, int64_t B, int64_t T,
                     float grad_scale, const Tensor* d_shared_kv) const {
  const ModelConfig& c = config_;
  const bool sp = tp_.sequence_parallel();
  // FFN branch: dx is the gradient of x_out, which flows unchanged to x_mid (residual) and
  // into the FFN output projection (which needs it for all N rows).
  const Tensor& d_out = full_rows(dx, s.full);
  const Tensor& d_ln_full = sp ? s.partial : s.d_ln;
  if (moe_) {
    // The MoE layer needs its output's gradient and its input at once: the input is gathered
    // into its own buffer.
    const Tensor& h = sp ? s.moe_in : k.ln2;
    if (sp) tp_.gather_to_full(k.ln2, s.moe_in);
    moe_->backward(d_ln_full, d_out, h, k.moe, s.moe, grad_scale);
  } else {
    linear_backward(ffn_out_, &s.d_ffn_act, d_out, k.ffn_act, false);
    if (c.activation == Activation::kSwiGlu) {
      ops::swiglu_backward(s.d_ffn_pre, k.ffn_pre, s.d_ffn_act);
    } else {
      ops::gelu_backward(s.d_ffn_pre, k.ffn_pre, s.d_ffn_act);
    }
    // The column-parallel input gradient is a partial sum over the group's shares of F.
    const Tensor& ln2 = full_rows(k.ln2, s.full);
    for (size_t i = 0; i < ffn_in_.size(); ++i) linear_backward(ffn_in_[i], &d_ln_full, s.d_ffn_pre, ln2, i > 0);
  }
  tp_.reduce_to_local(d_ln_full, s.d_ln);
  norm_backward(ln2_, dx, s.d_ln, k.x_mid, k.ln2_mean, k.ln2_rstd);  // dx += ...: now d x_mid
  // Attention branch; selective recomputation reruns the attention core first.
  const Tensor& att = k.att.defined() ? k.att : s.att;
  const Tensor& lse = k.lse.defined() ? k.lse : s.lse;
  if (!k.att.defined()) ops::attention_forward(s.att, s.lse, k.qkv, B, T, H_, KV_);
  const Tensor& d_mid = full_rows(dx, s.full);
  linear_backward(attn_out_, &s.d_att, d_mid, att, false);
  ops::attention_backward(s.d_qkv, s.d_att, k.qkv, att, lse, B, T, H_, KV_);
  // Cross-layer attention: the other layers' key/value gradients gather in d_shared_kv, and the
  // group's first layer adds them to its own (all before RoPE's backward: the keys were shared
  // rotated).
  if (d_shared_kv != nullptr) move_columns(s.d_qkv, *d_shared_kv, H_ * c.head_dim(), kv_source_, true);
  if (c.position == Position::kRope) ops::rope_backward(s.d_qkv, B, T, H_, KV_, static_cast<float>(c.rope_theta));
  const Tensor& ln1 = full_rows(k.ln1, s.full);
  for (size_t i = 0; i < qkv_.size(); ++i) linear_backward(qkv_[i], &d_ln_full, s.d_qkv, ln1, i > 0);
  tp_.reduce_to_local(d_ln_full, s.d_ln);
  norm_backward(ln1_, dx, s.d_ln, x_in, k.ln1_mean, k.ln1_rstd);  // dx += ...: now d x_in
}

void Block::reduce_partial_grads() const {
  if (tp_.sequence_parallel()) {
    for (const NormRef* n : {&ln1_, &ln2_}) {
      tp_.all_reduce(n->dw);
      if (n->db.defined()) tp_.all_reduce(n->db);
    }
  }
  // A shared key/value head: each sharing rank's gradient covers its own query heads.
  if (tp_.kv_replicas() > 1) {
    for (size_t i = 1; i < qkv_.size(); ++i) {  // k_proj, v_proj (q_proj is split, not shared)
      tp_.all_reduce_kv(qkv_[i].dw);
      if (qkv_[i].db.defined()) tp_.all_reduce_kv(qkv_[i].db);
    }
  }
}

}  // namespace tessel

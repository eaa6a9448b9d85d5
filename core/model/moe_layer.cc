#include "core/model/moe_layer.h"

#include "core/error.h"
#include "core/model/param_specs.h"
#include "core/ops.h"

namespace tessel {
namespace {

constexpr ops::WeightLayout kLayout = ops::WeightLayout::kOutIn;  // experts are LLaMA-family nn.Linear

}  // namespace

void MoeLayerStats::clear() {
  std::fill(chosen.begin(), chosen.end(), 0.0);
  std::fill(computed.begin(), computed.end(), 0.0);
  dropped = rerouted = aux_loss = micro_batches = 0;
}

std::vector<double> MoeLayerStats::pack() const {
  std::vector<double> v(chosen);
  v.insert(v.end(), computed.begin(), computed.end());
  v.insert(v.end(), {dropped, rerouted, aux_loss, micro_batches});
  return v;
}

void MoeLayerStats::unpack(const std::vector<double>& v) {
  const size_t E = chosen.size();
  TESSEL_CHECK(v.size() == 2 * E + 4) << "MoE statistics of " << v.size() << " numbers, expected " << 2 * E + 4;
  std::copy(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(E), chosen.begin());
  std::copy(v.begin() + static_cast<std::ptrdiff_t>(E), v.begin() + static_cast<std::ptrdiff_t>(2 * E),
            computed.begin());
  dropped = v[2 * E];
  rerouted = v[2 * E + 1];
  aux_loss = v[2 * E + 2];
  micro_batches = v[2 * E + 3];
}

MoeDims MoeDims::of(const ModelConfig& c, int tp_size) {
  MoeDims d;
  if (!c.moe.enabled()) return d;
  const int64_t in = c.activation == Activation::kSwiGlu ? 2 : 1;
  d.E = c.moe.experts;
  d.K = c.moe.top_k;
  d.Fe = c.moe.expert_width(c.ffn_dim) / tp_size;
  d.Fs = c.moe.shared_width(c.ffn_dim) / tp_size;
  d.fe_in = in * d.Fe;
  d.fs_in = in * d.Fs;
  return d;
}

MoeCache MoeCache::allocate(const MoeDims& d, int64_t N, int64_t C) {
  MoeCache k;
  const int64_t M = N * d.K;
  k.logits = Tensor::empty({N, d.E}, DType::F32);
  k.rows = Tensor::empty({M}, DType::I32);
  k.weights = Tensor::empty({M}, DType::F32);
  k.x = Tensor::empty({M, C}, DType::F32);
  k.pre = Tensor::empty({M, d.fe_in}, DType::F32);
  k.act = Tensor::empty({M, d.Fe}, DType::F32);
  k.out = Tensor::empty({M, C}, DType::F32);
  if (d.Fs > 0) {
    k.shared_pre = Tensor::empty({N, d.fs_in}, DType::F32);
    k.shared_act = Tensor::empty({N, d.Fs}, DType::F32);
  }
  return k;
}

int64_t MoeCache::bytes() const {
  int64_t n = 0;
  for (const Tensor* t : {&logits, &rows, &weights, &x, &pre, &act, &out, &shared_pre, &shared_act}) {
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  }
  return n;
}

MoeScratch MoeScratch::allocate(const MoeDims& d, int64_t N, int64_t C) {
  MoeScratch s;
  const int64_t M = N * d.K;
  s.d_logits = Tensor::empty({N, d.E}, DType::F32);
  s.d_weights = Tensor::empty({M}, DType::F32);
  s.d_x = Tensor::empty({M, C}, DType::F32);
  s.d_out = Tensor::empty({M, C}, DType::F32);
  s.d_pre = Tensor::empty({M, d.fe_in}, DType::F32);
  s.d_act = Tensor::empty({M, d.Fe}, DType::F32);
  if (d.Fs > 0) {
    s.d_shared_pre = Tensor::empty({N, d.fs_in}, DType::F32);
    s.d_shared_act = Tensor::empty({N, d.Fs}, DType::F32);
  }
  return s;
}

MoeFfn::MoeFfn(const ModelConfig& c, const ParameterStore& store, int64_t layer, const TpContext& tp,
               MoeLayerStats* stats)
    : config_(c.moe),
      swiglu_(c.activation == Activation::kSwiGlu),
      tp_(tp),
      stats_(stats),
      dims_(MoeDims::of(c, tp.size())) {
  const ModelNames n = model_names(c);
  const std::string mlp = n.layer(layer, "", "mlp.");
  router_ = store.compute_param(mlp + "gate.weight");
  d_router_ = store.grad(mlp + "gate.weight");
  if (config_.balance == MoeBalance::kAuxFree) bias_ = store.param(mlp + "gate.e_score_correction_bias");
  auto expert = [&](const std::string& prefix) {
    Expert e;
    for (const char* p :
         swiglu_ ? std::vector<const char*>{"gate_proj", "up_proj"} : std::vector<const char*>{"up_proj"}) {
      e.in.push_back(store.compute_param(prefix + p + ".weight"));
      e.d_in.push_back(store.grad(prefix + p + ".weight"));
    }
    e.down = store.compute_param(prefix + "down_proj.weight");
    e.d_down = store.grad(prefix + "down_proj.weight");
    return e;
  };
  for (int64_t e = 0; e < dims_.E; ++e) experts_.push_back(expert(mlp + "experts." + std::to_string(e) + "."));
  has_shared_ = dims_.Fs > 0;
  if (has_shared_) shared_ = expert(mlp + "shared_expert.");
  if (stats_ != nullptr) {
    stats_->layer = layer;
    stats_->chosen.assign(static_cast<size_t>(dims_.E), 0.0);
    stats_->computed.assign(static_cast<size_t>(dims_.E), 0.0);
  }
}

void MoeFfn::expert_forward(const Expert& e, const Tensor& x, const Tensor& pre, const Tensor& act,
                            const Tensor& y) const {
  const int64_t width = pre.size(1), F = act.size(1);
  for (size_t i = 0; i < e.in.size(); ++i) {
    ops::matmul_forward(pre, x, e.in[i], nullptr, kLayout, {static_cast<int64_t>(i) * F, width});
  }
  if (swiglu_) {
    ops::swiglu_forward(act, pre);
  } else {
    ops::gelu_forward(act, pre);
  }
  ops::matmul_forward(y, act, e.down, nullptr, kLayout);
}

void MoeFfn::expert_backward(const Expert& e, const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& pre,
                             const Tensor& act, const Tensor& d_pre, const Tensor& d_act) const {
  const int64_t width = pre.size(1), F = act.size(1);
  ops::matmul_backward(&d_act, e.d_down, nullptr, dy, act, e.down, kLayout, false);
  if (swiglu_) {
    ops::swiglu_backward(d_pre, pre, d_act);
  } else {
    ops::gelu_backward(d_pre, pre, d_act);
  }
  for (size_t i = 0; i < e.in.size(); ++i) {
    ops::matmul_backward(&dx, e.d_in[i], nullptr, d_pre, x, e.in[i], kLayout, i > 0,
                         {static_cast<int64_t>(i) * F, width});
  }
}

void MoeFfn::forward(const Tensor& h, const Tensor& out, MoeCache& k) const {
  const int64_t N = h.size(0), C = h.size(1), K = dims_.K;
  ops::matmul_forward(k.logits, h, router_, nullptr, kLayout);
  k.routing = route_tokens(config_, k.logits.data<float>(), bias_.defined() ? bias_.data<float>() : nullptr, N);
  const MoeRouting& r = k.routing;
  const int64_t M = r.rows();
  int32_t* rows = k.rows.data<int32_t>();
  float* weights = k.weights.data<float>();
  for (int64_t i = 0; i < M; ++i) {
    const int32_t a = r.assignment[static_cast<size_t>(i)];
    rows[i] = static_cast<int32_t>(a / K);
    weights[i] = r.weight[static_cast<size_t>(a)];
  }
  if (has_shared_) {
    expert_forward(shared_, h, k.shared_pre, k.shared_act, out);
  } else {
    out.fill_zero();
  }
  if (M == 0) return;
  ops::moe_gather_rows(k.x.view(0, {M, C}), h, k.rows.view(0, {M}), nullptr);
  for (int64_t e = 0; e < dims_.E; ++e) {
    const int64_t first = r.offsets[static_cast<size_t>(e)], m = r.offsets[static_cast<size_t>(e) + 1] - first;
    if (m == 0) continue;
    expert_forward(experts_[static_cast<size_t>(e)], k.x.view(first * C, {m, C}),
                   k.pre.view(first * dims_.fe_in, {m, dims_.fe_in}), k.act.view(first * dims_.Fe, {m, dims_.Fe}),
                   k.out.view(first * C, {m, C}));
  }
  const Tensor weights_used = k.weights.view(0, {M});
  ops::moe_scatter_add_rows(out, k.out.view(0, {M, C}), k.rows.view(0, {M}), &weights_used);
}

void MoeFfn::backward(const Tensor& dh, const Tensor& dout, const Tensor& h, const MoeCache& k, MoeScratch& s,
                      float grad_scale) const {
  const int64_t N = h.size(0), C = h.size(1), K = dims_.K;
  const MoeRouting& r = k.routing;
  const int64_t M = r.rows();
  const Tensor rows = k.rows.view(0, {M});
  if (M > 0) {
    // The combine y += w · out: d w = dout · out (summed over the group: out is a partial sum),
    // d out = w · dout.
    const Tensor d_weights = s.d_weights.view(0, {M});
    const Tensor weights = k.weights.view(0, {M});
    ops::moe_row_dots(d_weights, k.out.view(0, {M, C}), dout, rows);
    tp_.all_reduce(d_weights);
    ops::moe_gather_rows(s.d_out.view(0, {M, C}), dout, rows, &weights);
  }
  if (has_shared_) {
    expert_backward(shared_, dh, dout, h, k.shared_pre, k.shared_act, s.d_shared_pre, s.d_shared_act);
  } else {
    dh.fill_zero();
  }
  for (int64_t e = 0; e < dims_.E; ++e) {
    const int64_t first = r.offsets[static_cast<size_t>(e)], m = r.offsets[static_cast<size_t>(e) + 1] - first;
    if (m == 0) continue;
    expert_backward(experts_[static_cast<size_t>(e)], s.d_x.view(first * C, {m, C}), s.d_out.view(first * C, {m, C}),
                    k.x.view(first * C, {m, C}), k.pre.view(first * dims_.fe_in, {m, dims_.fe_in}),
                    k.act.view(first * dims_.Fe, {m, dims_.Fe}), s.d_pre.view(first * dims_.fe_in, {m, dims_.fe_in}),
                    s.d_act.view(first * dims_.Fe, {m, dims_.Fe}));
  }
  if (M > 0) ops::moe_scatter_add_rows(dh, s.d_x.view(0, {M, C}), rows, nullptr);
  // The router: every rank of the group computes the same logits' gradient; rank 0 adds its
  // share of the input gradient (dh is summed over the group).
  std::vector<float> d_weight(static_cast<size_t>(N * K), 0.f);
  const float* dw = s.d_weights.data<float>();
  for (int64_t i = 0; i < M; ++i) d_weight[static_cast<size_t>(r.assignment[static_cast<size_t>(i)])] = dw[i];
  route_backward(config_, r, d_weight.data(), grad_scale, s.d_logits.data<float>());
  ops::matmul_backward(tp_.rank() == 0 ? &dh : nullptr, d_router_, nullptr, s.d_logits, h, router_, kLayout, true);

  if (stats_ != nullptr) {
    for (int64_t e = 0; e < dims_.E; ++e) {
      stats_->chosen[static_cast<size_t>(e)] += static_cast<double>(r.chosen[static_cast<size_t>(e)]);
      stats_->computed[static_cast<size_t>(e)] +=
          static_cast<double>(r.offsets[static_cast<size_t>(e) + 1] - r.offsets[static_cast<size_t>(e)]);
    }
    stats_->dropped += static_cast<double>(r.dropped);
    stats_->rerouted += static_cast<double>(r.rerouted);
    stats_->aux_loss += r.aux_loss;
    stats_->micro_batches += 1;
  }
}

}  // namespace tessel

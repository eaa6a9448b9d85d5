#include "core/model/moe_layer.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/measure.h"
#include "core/model/param_specs.h"
#include "core/ops.h"

namespace tessel {
namespace {

constexpr ops::WeightLayout kLayout = ops::WeightLayout::kOutIn;  // experts are LLaMA-family nn.Linear

}  // namespace

void MoeLayerStats::clear() {
  std::fill(chosen.begin(), chosen.end(), 0.0);
  std::fill(computed.begin(), computed.end(), 0.0);
  dropped = rerouted = aux_loss = micro_batches = exchange_s = 0;
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
  d.gate = c.moe.shared_gate;
  return d;
}

Staged Staged::make(DeviceBackend* device, const Shape& shape, DType dtype) {
  Staged t;
  t.dev = empty_on(device, shape, dtype);
  if (device == nullptr) {
    t.host = t.dev;
    return t;
  }
  const bool narrow = dtype == DType::BF16 || dtype == DType::F16;
  t.host = Tensor::empty(shape, narrow ? DType::F32 : dtype);
  if (narrow) t.wide = device->empty(shape, DType::F32);
  return t;
}

void Staged::read() const {
  if (host.raw() == dev.raw()) return;
  if (wide.defined()) {
    dev.storage()->backend()->cast(wide, dev);
    host.copy_from(wide);
  } else {
    host.copy_from(dev);
  }
}

void Staged::write() const {
  if (host.raw() == dev.raw()) return;
  if (wide.defined()) {
    wide.copy_from(host);
    dev.storage()->backend()->cast(dev, wide);
  } else {
    dev.copy_from(host);
  }
}

int64_t Staged::bytes() const { return dev.defined() ? static_cast<int64_t>(dev.nbytes()) : 0; }

MoeCache MoeCache::allocate(const MoeDims& d, int64_t N, int64_t C, int ep, DeviceBackend* device, DType values) {
  MoeCache k;
  const int64_t M = N * d.K, R = M * ep;
  const auto make = [&](const Shape& shape) { return empty_on(device, shape, values); };
  k.logits = Staged::make(device, {N, d.E}, values);
  k.rows = Staged::make(device, {M}, DType::I32);
  k.weights = Staged::make(device, {M}, DType::F32);
  k.x = make({M, C});
  k.out = make({M, C});
  k.lpre = make({R, d.fe_in});
  k.lact = make({R, d.Fe});
  if (ep > 1) {
    k.lx = make({R, C});
    k.lout = make({R, C});
    k.recv = make({R, C});
    k.perm = Staged::make(device, {R}, DType::I32);
    k.inv_perm = Staged::make(device, {R}, DType::I32);
    k.counts = Staged::make(device, {d.E}, DType::F64);
    k.all_counts = Staged::make(device, {d.E * ep}, DType::F64);
  } else {
    k.lx = k.x;
    k.lout = k.out;
  }
  if (d.Fs > 0) {
    k.shared_pre = make({N, d.fs_in});
    k.shared_act = make({N, d.Fs});
  }
  if (d.gate) {
    k.shared_out = make({N, C});
    k.gate_logit = Staged::make(device, {N, 1}, values);
    k.gate = Staged::make(device, {N}, DType::F32);
    k.tokens = Staged::make(device, {N}, DType::I32);
    for (int64_t n = 0; n < N; ++n) k.tokens.host.data<int32_t>()[n] = static_cast<int32_t>(n);
    k.tokens.write();
  }
  return k;
}

int64_t MoeCache::bytes() const {
  int64_t n = 0;
  for (const Tensor* t : {&x, &out, &lpre, &lact, &shared_pre, &shared_act, &recv, &shared_out}) {
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  }
  for (const Staged* t : {&logits, &rows, &weights, &perm, &inv_perm, &gate_logit, &gate, &tokens}) n += t->bytes();
  if (recv.defined()) n += static_cast<int64_t>(lx.nbytes() + lout.nbytes());  // not aliases with ep
  return n;
}

MoeScratch MoeScratch::allocate(const MoeDims& d, int64_t N, int64_t C, int ep, DeviceBackend* device, DType values) {
  MoeScratch s;
  const int64_t M = N * d.K, R = M * ep;
  const auto make = [&](const Shape& shape) { return empty_on(device, shape, values); };
  s.d_logits = Staged::make(device, {N, d.E}, values);
  s.d_weights = Staged::make(device, {M}, DType::F32);
  s.d_x = make({M, C});
  s.d_out = make({M, C});
  s.d_lpre = make({R, d.fe_in});
  s.d_lact = make({R, d.Fe});
  if (ep > 1) {
    s.d_lout = make({R, C});
    s.d_lx = make({R, C});
    s.d_recv = make({R, C});
  } else {
    s.d_lout = s.d_out;
    s.d_lx = s.d_x;
  }
  if (d.Fs > 0) {
    s.d_shared_pre = make({N, d.fs_in});
    s.d_shared_act = make({N, d.Fs});
  }
  if (d.gate) {
    s.d_shared = make({N, C});
    s.d_gate = Staged::make(device, {N}, DType::F32);
    s.d_gate_logit = Staged::make(device, {N, 1}, values);
  }
  return s;
}

MoeFfn::MoeFfn(const ModelConfig& c, const ParameterStore& store, int64_t layer, const TpContext& tp,
               MoeLayerStats* stats, Communicator* ep)
    : config_(c.moe),
      swiglu_(c.activation == Activation::kSwiGlu),
      tp_(tp),
      stats_(stats),
      dims_(MoeDims::of(c, tp.size())),
      ep_(ep != nullptr && ep->size() > 1 ? ep : nullptr) {
  const ModelNames n = model_names(c);
  const std::string mlp = n.layer(layer, "", "mlp.");
  router_ = store.compute_param(mlp + "gate.weight");
  d_router_ = store.grad(mlp + "gate.weight");
  if (config_.balance == MoeBalance::kAuxFree) {
    bias_ = store.param(mlp + "gate.e_score_correction_bias");
    bias_host_ = bias_.device().is_cpu() ? bias_ : Tensor::empty(bias_.shape(), DType::F32);
  }
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
  has_shared_ = dims_.Fs > 0;
  if (has_shared_) shared_ = expert(mlp + "shared_expert.");
  if (config_.shared_gate) {
    gate_ = store.compute_param(mlp + "shared_expert_gate.weight");
    d_gate_ = store.grad(mlp + "shared_expert_gate.weight");
  }
  local_experts_ = dims_.E;
  if (ep_ != nullptr) {
    TESSEL_CHECK(dims_.E % ep_->size() == 0)
        << "model.moe.experts (" << dims_.E << ") must be divisible by parallel.ep (" << ep_->size() << ")";
    local_experts_ = dims_.E / ep_->size();
    first_expert_ = ep_->rank() * local_experts_;
  }
  // The store holds this rank's routed experts (all of them without expert parallelism).
  for (int64_t e = first_expert_; e < first_expert_ + local_experts_; ++e) {
    experts_.push_back(expert(mlp + "experts." + std::to_string(e) + "."));
  }
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

void MoeFfn::plan_exchange(MoeCache& k) const {
  const MoeRouting& r = k.routing;
  const int P = ep_->size();
  const int64_t E = dims_.E, El = local_experts_;
  // Every rank's rows per expert, so that each owner knows what arrives from whom.
  for (int64_t e = 0; e < E; ++e) {
    k.counts.host.data<double>()[e] =
        static_cast<double>(r.offsets[static_cast<size_t>(e) + 1] - r.offsets[static_cast<size_t>(e)]);
  }
  k.counts.write();
  ep_->all_gather(k.counts.dev, k.all_counts.dev);
  k.all_counts.read();
  const double* counts = k.all_counts.host.data<double>();  // counts[q · E + e]: rank q's rows for expert e
  k.send_rows.assign(static_cast<size_t>(P), 0);
  k.recv_rows.assign(static_cast<size_t>(P), 0);
  for (int q = 0; q < P; ++q) {
    k.send_rows[static_cast<size_t>(q)] =
        r.offsets[static_cast<size_t>((q + 1) * El)] - r.offsets[static_cast<size_t>(q * El)];
    for (int64_t e = first_expert_; e < first_expert_ + El; ++e) {
      k.recv_rows[static_cast<size_t>(q)] += static_cast<int64_t>(counts[q * E + e]);
    }
  }
  // Received rows are rank-major (then expert); local rows expert-major (then rank).
  std::vector<int64_t> start(static_cast<size_t>(P), 0);
  for (int q = 1; q < P; ++q)
    start[static_cast<size_t>(q)] = start[static_cast<size_t>(q) - 1] + k.recv_rows[static_cast<size_t>(q) - 1];
  k.local_offsets.assign(static_cast<size_t>(El + 1), 0);
  int32_t* perm = k.perm.host.data<int32_t>();
  int32_t* inv = k.inv_perm.host.data<int32_t>();
  int64_t i = 0;
  for (int64_t el = 0; el < El; ++el) {
    for (int q = 0; q < P; ++q) {
      int64_t at = start[static_cast<size_t>(q)];
      for (int64_t before = 0; before < el; ++before)
        at += static_cast<int64_t>(counts[q * E + first_expert_ + before]);
      const int64_t n = static_cast<int64_t>(counts[q * E + first_expert_ + el]);
      for (int64_t j = 0; j < n; ++j, ++i) {
        perm[i] = static_cast<int32_t>(at + j);
        inv[at + j] = static_cast<int32_t>(i);
      }
    }
    k.local_offsets[static_cast<size_t>(el) + 1] = i;
  }
  k.perm.write();
  k.inv_perm.write();
}

void MoeFfn::forward(const Tensor& h, const Tensor& out, MoeCache& k) const {
  const int64_t N = h.size(0), C = h.size(1), K = dims_.K;
  ops::matmul_forward(k.logits.dev, h, router_, nullptr, kLayout);
  k.logits.read();
  if (bias_.defined() && bias_host_.raw() != bias_.raw()) bias_host_.copy_from(bias_);
  MoeConfig routing = config_;
  if (dropless_) routing.capacity_factor = 0;
  k.routing =
      route_tokens(routing, k.logits.host.data<float>(), bias_.defined() ? bias_host_.data<float>() : nullptr, N);
  const MoeRouting& r = k.routing;
  const int64_t M = r.rows();
  int32_t* rows = k.rows.host.data<int32_t>();
  float* weights = k.weights.host.data<float>();
  for (int64_t i = 0; i < M; ++i) {
    const int32_t a = r.assignment[static_cast<size_t>(i)];
    rows[i] = static_cast<int32_t>(a / K);
    weights[i] = r.weight[static_cast<size_t>(a)];
  }
  k.rows.write();
  k.weights.write();
  if (M > 0) ops::moe_gather_rows(k.x.view(0, {M, C}), h, k.rows.dev.view(0, {M}), nullptr);
  // Dispatch: the rows go to their experts' owners while the shared expert runs.
  std::shared_ptr<Work> dispatch;
  k.exchange_s = 0;
  if (ep_ != nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    plan_exchange(k);
    dispatch = ep_->all_to_all_async(k.x, k.send_rows, k.recv, k.recv_rows);
    k.exchange_s += seconds_since(t0);
  } else {
    k.local_offsets = r.offsets;
  }
  if (gate_.defined()) {
    // Qwen2-MoE: the shared expert's output times sigmoid(h · gate), token by token.
    expert_forward(shared_, h, k.shared_pre, k.shared_act, k.shared_out);
    ops::matmul_forward(k.gate_logit.dev, h, gate_, nullptr, kLayout);
    k.gate_logit.read();
    const float* z = k.gate_logit.host.data<float>();
    float* g = k.gate.host.data<float>();
    for (int64_t n = 0; n < N; ++n) g[n] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(z[n]))));
    k.gate.write();
    ops::moe_gather_rows(out, k.shared_out, k.tokens.dev, &k.gate.dev);
  } else if (has_shared_) {
    expert_forward(shared_, h, k.shared_pre, k.shared_act, out);
  } else {
    out.fill_zero();
  }
  const int64_t L = k.local_offsets.back();  // local rows
  if (dispatch) {
    const auto t0 = std::chrono::steady_clock::now();
    dispatch->wait();
    k.exchange_s += seconds_since(t0);
    if (L > 0) ops::moe_gather_rows(k.lx.view(0, {L, C}), k.recv, k.perm.dev.view(0, {L}), nullptr);
  }
  for (int64_t el = 0; el + 1 < static_cast<int64_t>(k.local_offsets.size()); ++el) {
    const int64_t first = k.local_offsets[static_cast<size_t>(el)],
                  m = k.local_offsets[static_cast<size_t>(el) + 1] - first;
    if (m == 0) continue;
    expert_forward(experts_[static_cast<size_t>(el)], k.lx.view(first * C, {m, C}),
                   k.lpre.view(first * dims_.fe_in, {m, dims_.fe_in}), k.lact.view(first * dims_.Fe, {m, dims_.Fe}),
                   k.lout.view(first * C, {m, C}));
  }
  if (ep_ != nullptr) {
    // Combine: the outputs back to the ranks whose tokens they are, in their expert-major order.
    if (L > 0) {
      ops::moe_gather_rows(k.recv.view(0, {L, C}), k.lout.view(0, {L, C}), k.inv_perm.dev.view(0, {L}), nullptr);
    }
    const auto t0 = std::chrono::steady_clock::now();
    ep_->all_to_all(k.recv, k.recv_rows, k.out, k.send_rows);
    k.exchange_s += seconds_since(t0);
  }
  if (M == 0) return;
  const Tensor weights_used = k.weights.dev.view(0, {M});
  ops::moe_scatter_add_rows(out, k.out.view(0, {M, C}), k.rows.dev.view(0, {M}), &weights_used);
}

void MoeFfn::backward(const Tensor& dh, const Tensor& dout, const Tensor& h, const MoeCache& k, MoeScratch& s,
                      float grad_scale) const {
  const int64_t N = h.size(0), C = h.size(1), K = dims_.K;
  const MoeRouting& r = k.routing;
  const int64_t M = r.rows(), L = k.local_offsets.back();
  const Tensor rows = k.rows.dev.view(0, {M});
  if (M > 0) {
    // The combine y += w · out: d w = dout · out (summed over the group: out is a partial sum),
    // d out = w · dout.
    const Tensor d_weights = s.d_weights.dev.view(0, {M});
    const Tensor weights = k.weights.dev.view(0, {M});
    ops::moe_row_dots(d_weights, k.out.view(0, {M, C}), dout, rows);
    tp_.all_reduce(d_weights);
    ops::moe_gather_rows(s.d_out.view(0, {M, C}), dout, rows, &weights);
  }
  // The outputs' gradients to the experts' owners, while the shared expert's backward runs.
  std::shared_ptr<Work> to_owners;
  double exchange_s = k.exchange_s;
  if (ep_ != nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    to_owners = ep_->all_to_all_async(s.d_out, k.send_rows, s.d_recv, k.recv_rows);
    exchange_s += seconds_since(t0);
  }
  const Tensor* shared_dout = &dout;
  if (gate_.defined()) {
    // d gate = dout · shared_out (summed over the group: shared_out is a partial sum), through
    // the sigmoid; the shared expert sees dout times the gate.
    ops::moe_row_dots(s.d_gate.dev, k.shared_out, dout, k.tokens.dev);
    tp_.all_reduce(s.d_gate.dev);
    s.d_gate.read();
    const float* dg = s.d_gate.host.data<float>();
    const float* g = k.gate.host.data<float>();
    float* dz = s.d_gate_logit.host.data<float>();
    for (int64_t n = 0; n < N; ++n) dz[n] = dg[n] * g[n] * (1.0f - g[n]);
    s.d_gate_logit.write();
    ops::moe_gather_rows(s.d_shared, dout, k.tokens.dev, &k.gate.dev);
    shared_dout = &s.d_shared;
  }
  if (has_shared_) {
    expert_backward(shared_, dh, *shared_dout, h, k.shared_pre, k.shared_act, s.d_shared_pre, s.d_shared_act);
  } else {
    dh.fill_zero();
  }
  if (to_owners) {
    const auto t0 = std::chrono::steady_clock::now();
    to_owners->wait();
    exchange_s += seconds_since(t0);
    if (L > 0) ops::moe_gather_rows(s.d_lout.view(0, {L, C}), s.d_recv, k.perm.dev.view(0, {L}), nullptr);
  }
  for (int64_t el = 0; el + 1 < static_cast<int64_t>(k.local_offsets.size()); ++el) {
    const int64_t first = k.local_offsets[static_cast<size_t>(el)],
                  m = k.local_offsets[static_cast<size_t>(el) + 1] - first;
    if (m == 0) continue;
    expert_backward(experts_[static_cast<size_t>(el)], s.d_lx.view(first * C, {m, C}), s.d_lout.view(first * C, {m, C}),
                    k.lx.view(first * C, {m, C}), k.lpre.view(first * dims_.fe_in, {m, dims_.fe_in}),
                    k.lact.view(first * dims_.Fe, {m, dims_.Fe}), s.d_lpre.view(first * dims_.fe_in, {m, dims_.fe_in}),
                    s.d_lact.view(first * dims_.Fe, {m, dims_.Fe}));
  }
  if (ep_ != nullptr) {
    // The inputs' gradients back to the tokens' ranks.
    if (L > 0) {
      ops::moe_gather_rows(s.d_recv.view(0, {L, C}), s.d_lx.view(0, {L, C}), k.inv_perm.dev.view(0, {L}), nullptr);
    }
    const auto t0 = std::chrono::steady_clock::now();
    ep_->all_to_all(s.d_recv, k.recv_rows, s.d_x, k.send_rows);
    exchange_s += seconds_since(t0);
  }
  if (M > 0) ops::moe_scatter_add_rows(dh, s.d_x.view(0, {M, C}), rows, nullptr);
  // The router: every rank of the group computes the same logits' gradient; rank 0 adds its
  // share of the input gradient (dh is summed over the group).
  std::vector<float> d_weight(static_cast<size_t>(N * K), 0.f);
  if (M > 0) s.d_weights.read();
  const float* dw = s.d_weights.host.data<float>();
  for (int64_t i = 0; i < M; ++i) d_weight[static_cast<size_t>(r.assignment[static_cast<size_t>(i)])] = dw[i];
  route_backward(config_, r, d_weight.data(), grad_scale, s.d_logits.host.data<float>());
  s.d_logits.write();
  ops::matmul_backward(tp_.rank() == 0 ? &dh : nullptr, d_router_, nullptr, s.d_logits.dev, h, router_, kLayout, true);
  if (gate_.defined()) {
    ops::matmul_backward(tp_.rank() == 0 ? &dh : nullptr, d_gate_, nullptr, s.d_gate_logit.dev, h, gate_, kLayout,
                         true);
  }

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
    stats_->exchange_s += exchange_s;
  }
}

}  // namespace tessel

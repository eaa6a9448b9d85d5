#include "core/model/transformer.h"

namespace tessel {

Transformer::Transformer(const ModelConfig& config, int64_t micro_batch, int64_t seq_len,
                         const std::string& recompute, int64_t param_multiple, Communicator* tp_group,
                         bool sequence_parallel, int slots)
    : config_(config),
      B_(micro_batch),
      T_(seq_len),
      recompute_full_(recompute == "full"),
      tp_(tp_group, sequence_parallel, micro_batch, seq_len, config.d_model, config.kv_heads),
      store_(transformer_param_specs(config), param_multiple, tp_.rank(), tp_.size()) {
  TESSEL_CHECK(seq_len <= config.seq_len || config.position == "rope")
      << "sequence length " << seq_len << " exceeds model.seq_len " << config.seq_len
      << " learned positions";
  TESSEL_CHECK(config.vocab_size % tp_.size() == 0)
      << "model.vocab_size (" << config.vocab_size << ") must be divisible by parallel.tp (" << tp_.size() << ")";
  const ModelNames n = model_names(config);
  wte_ = store_.param(n.wte);
  dwte_ = store_.grad(n.wte);
  vocab_start_ = tp_.rank() * wte_.size(0);
  if (config.position == "learned") {
    wpe_ = store_.param(n.wpe);
    dwpe_ = store_.grad(n.wpe);
  }
  if (!config.tie_embeddings) {
    lm_head_ = store_.param(n.lm_head);
    dlm_head_ = store_.grad(n.lm_head);
  }
  final_norm_ = norm_ref(store_, n.final_norm_w, n.final_norm_b, config.norm == "layernorm");
  final_norm_offset_ = store_.entry(n.final_norm_w).offset;
  for (int64_t i = 0; i < config.layers; ++i) {
    blocks_.emplace_back(config, store_, i, tp_);
    block_offsets_.push_back(store_.entry(n.layer(i, "ln_1.weight", "input_layernorm.weight")).offset);
  }

  const BlockDims d = BlockDims::of(config, B_, T_, tp_);
  const int64_t N = d.N, Nl = d.Nl, C = config.d_model;
  TESSEL_CHECK(slots >= 1) << "a model needs at least one activation slot, got " << slots;
  const int64_t ncache = recompute_full_ ? 1 : config.layers;
  for (int k = 0; k < slots; ++k) {
    Slot s;
    for (int64_t i = 0; i <= config.layers; ++i) s.residual.push_back(Tensor::empty({Nl, C}, DType::F32));
    // Full recomputation rebuilds a block's cache in backward: one cache serves every slot.
    if (k == 0 || !recompute_full_) {
      for (int64_t i = 0; i < ncache; ++i) s.caches.push_back(BlockCache::allocate(d, B_, T_, recompute != "selective"));
    }
    s.final_ln = Tensor::empty({Nl, C}, DType::F32);
    s.final_mean = Tensor::empty({Nl}, DType::F32);
    s.final_rstd = Tensor::empty({Nl}, DType::F32);
    s.final_full = tp_.sequence_parallel() ? Tensor::empty({N, C}, DType::F32) : s.final_ln;
    slots_.push_back(std::move(s));
  }
  scratch_ = BlockScratch::allocate(d, B_, T_);
  if (tp_.size() > 1) embed_full_ = Tensor::empty({N, C}, DType::F32);
  losses_ = Tensor::empty({N}, DType::F32);
  if (tp_.size() > 1) {
    vocab_loss_ = VocabParallelLossBuffers::allocate(N, wte_.size(0));
  } else {
    head_workspace_ = Tensor::empty({ops::classifier_workspace_numel(N, config.vocab_size)}, DType::F32);
  }
  dx_ = Tensor::empty({Nl, C}, DType::F32);
  d_final_ = Tensor::empty({N, C}, DType::F32);
  d_final_local_ = tp_.sequence_parallel() ? Tensor::empty({Nl, C}, DType::F32) : d_final_;
}

Transformer::Slot& Transformer::slot(int index) {
  TESSEL_CHECK(index >= 0 && index < static_cast<int>(slots_.size()))
      << "activation slot " << index << " outside [0, " << slots_.size() << ")";
  return slots_[static_cast<size_t>(index)];
}

void Transformer::forward(const Tensor& tokens, int index) {
  TESSEL_CHECK(tokens.dim() == 2 && tokens.size(0) == B_ && tokens.size(1) == T_)
      << "model built for micro-batches of (" << B_ << ", " << T_ << "), got tokens "
      << tokens.str();
  Slot& s = slot(index);
  if (tp_.size() == 1) {
    ops::embedding_forward(s.residual[0], tokens, wte_, wpe_.defined() ? &wpe_ : nullptr);
  } else {
    // Each rank looks up the tokens of its vocabulary range (rank 0 adds the positions); the
    // sum over the group is the embedding.
    ops::embedding_forward(embed_full_, tokens, wte_, wpe_.defined() && tp_.rank() == 0 ? &wpe_ : nullptr,
                           vocab_start_, config_.vocab_size);
    tp_.reduce_to_local(embed_full_, s.residual[0]);
  }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    BlockCache& cache = recompute_full_ ? slots_[0].caches[0] : s.caches[i];
    blocks_[i].forward(s.residual[i], s.residual[i + 1], cache, scratch_, B_, T_);
  }
  const float eps = static_cast<float>(config_.norm_eps);
  if (final_norm_.b.defined()) {
    ops::layernorm_forward(s.final_ln, s.final_mean, s.final_rstd, s.residual.back(), final_norm_.w,
                           final_norm_.b, eps);
  } else {
    ops::rmsnorm_forward(s.final_ln, s.final_rstd, s.residual.back(), final_norm_.w, eps);
  }
  tp_.gather_to_full(s.final_ln, s.final_full);
}

namespace {
float mean_of(const Tensor& t) {
  // Summed in double in a fixed order: the reported loss is bitwise reproducible.
  const float* p = t.data<float>();
  double s = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) s += p[i];
  return static_cast<float>(s / static_cast<double>(t.numel()));
}
}  // namespace

void Transformer::head_loss(const Slot& s, const Tensor& targets, float dloss, bool backward) {
  const Tensor targets_flat = targets.reshape({B_ * T_});
  const Tensor* dx = backward ? &d_final_ : nullptr;
  const Tensor* dw = backward ? &head_grad() : nullptr;
  if (tp_.size() == 1) {
    ops::classifier_forward_backward(losses_, dx, dw, s.final_full, head_weight(), targets_flat, dloss, head_workspace_);
  } else {
    vocab_parallel_loss(losses_, dx, dw, s.final_full, head_weight(), targets_flat, dloss, vocab_start_, vocab_loss_, tp_);
  }
}

float Transformer::forward_backward(const Tensor& tokens, const Tensor& targets,
                                    float grad_scale) {
  forward(tokens, 0);
  return backward(tokens, targets, grad_scale, 0);
}

float Transformer::backward(const Tensor& tokens, const Tensor& targets, float grad_scale, int index) {
  Slot& s = slot(index);
  // Head: loss and its gradient in one pass; dloss per position = grad_scale / N.
  head_loss(s, targets, grad_scale / static_cast<float>(B_ * T_), true);
  // The head's input gradient is a partial sum over the vocabulary shards.
  tp_.reduce_to_local(d_final_, d_final_local_);
  dx_.fill_zero();
  if (final_norm_.b.defined()) {
    ops::layernorm_backward(dx_, final_norm_.dw, final_norm_.db, d_final_local_, s.residual.back(),
                            final_norm_.w, s.final_mean, s.final_rstd);
  } else {
    ops::rmsnorm_backward(dx_, final_norm_.dw, d_final_local_, s.residual.back(), final_norm_.w,
                          s.final_rstd);
  }
  if (tp_.sequence_parallel() && reduce_partial_grads_) {
    tp_.all_reduce(final_norm_.dw);
    if (final_norm_.db.defined()) tp_.all_reduce(final_norm_.db);
  }
  if (grad_ready_) grad_ready_(final_norm_offset_);  // the final norm and an untied head
  for (size_t i = blocks_.size(); i-- > 0;) {
    BlockCache& cache = recompute_full_ ? slots_[0].caches[0] : s.caches[i];
    if (recompute_full_) {
      // Rebuild this block's activations from its saved input; x_out is scratch here (the
      // last block's output is no longer read once the final norm's backward is done).
      blocks_[i].forward(s.residual[i], s.residual.back(), cache, scratch_, B_, T_);
    }
    blocks_[i].backward(dx_, s.residual[i], cache, scratch_, B_, T_);
    if (reduce_partial_grads_) blocks_[i].reduce_partial_grads();
    if (grad_ready_) grad_ready_(block_offsets_[i]);
  }
  // The lookup's gradient needs every position's gradient (each rank owns some tokens').
  const Tensor& d_embed = tp_.sequence_parallel() ? d_final_ : dx_;
  tp_.gather_to_full(dx_, d_embed);
  ops::embedding_backward(dwte_, dwpe_.defined() ? &dwpe_ : nullptr, d_embed, tokens, vocab_start_);
  if (grad_ready_) grad_ready_(0);  // the embeddings (a tied head's gradient is among them)
  return mean_of(losses_);
}

float Transformer::forward_loss(const Tensor& tokens, const Tensor& targets) {
  forward(tokens, 0);
  head_loss(slots_[0], targets, 0.0f, false);
  return mean_of(losses_);
}

std::vector<float> Transformer::logits_at(const Tensor& tokens, int64_t position) {
  TESSEL_CHECK(tp_.size() == 1) << "logits_at runs on a whole model, not a tensor-parallel shard";
  TESSEL_CHECK(position >= 0 && position < T_) << "position " << position << " outside [0, " << T_ << ")";
  forward(tokens, 0);
  const int64_t C = config_.d_model, V = config_.vocab_size;
  const Tensor row = slots_[0].final_ln.view(position * C, {1, C});
  Tensor out = Tensor::empty({1, V}, DType::F32);
  ops::matmul_forward(out, row, head_weight(), nullptr, ops::WeightLayout::kOutIn);
  return std::vector<float>(out.data<float>(), out.data<float>() + V);
}

int64_t Transformer::activation_bytes() const {
  const Slot& s = slots_[0];
  int64_t n = 0;
  for (const BlockCache& k : s.caches) n += k.bytes();
  for (const Tensor& r : s.residual) n += static_cast<int64_t>(r.nbytes());
  return n;
}

int64_t Transformer::num_parameters() const {
  int64_t n = 0;
  for (const ParamEntry& e : store_.entries()) n += shape_numel(e.spec.shape);
  return n;
}

double Transformer::flops_per_token() const {
  return 6.0 * static_cast<double>(num_parameters()) +
         6.0 * static_cast<double>(config_.layers * T_ * config_.d_model);
}

}  // namespace tessel

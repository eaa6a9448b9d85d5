#include "core/model/transformer.h"

namespace tessel {

Transformer::Transformer(const ModelConfig& config, int64_t micro_batch, int64_t seq_len,
                         const std::string& recompute, int64_t param_multiple)
    : config_(config),
      B_(micro_batch),
      T_(seq_len),
      recompute_full_(recompute == "full"),
      store_(transformer_param_specs(config), param_multiple) {
  TESSEL_CHECK(seq_len <= config.seq_len || config.position == "rope")
      << "sequence length " << seq_len << " exceeds model.seq_len " << config.seq_len
      << " learned positions";
  const ModelNames n = model_names(config);
  wte_ = store_.param(n.wte);
  dwte_ = store_.grad(n.wte);
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
    blocks_.emplace_back(config, store_, i);
    block_offsets_.push_back(store_.entry(n.layer(i, "ln_1.weight", "input_layernorm.weight")).offset);
  }

  const int64_t N = B_ * T_, C = config.d_model;
  for (int64_t i = 0; i <= config.layers; ++i) residual_.push_back(Tensor::empty({N, C}, DType::F32));
  const int64_t ncache = recompute_full_ ? 1 : config.layers;
  for (int64_t i = 0; i < ncache; ++i) caches_.push_back(BlockCache::allocate(config, B_, T_));
  scratch_ = BlockScratch::allocate(config, B_, T_);
  final_ln_ = Tensor::empty({N, C}, DType::F32);
  final_mean_ = Tensor::empty({N}, DType::F32);
  final_rstd_ = Tensor::empty({N}, DType::F32);
  losses_ = Tensor::empty({N}, DType::F32);
  head_workspace_ = Tensor::empty({ops::classifier_workspace_numel(N, config.vocab_size)}, DType::F32);
  dx_ = Tensor::empty({N, C}, DType::F32);
  d_final_ = Tensor::empty({N, C}, DType::F32);
}

void Transformer::forward_blocks(const Tensor& tokens) {
  TESSEL_CHECK(tokens.dim() == 2 && tokens.size(0) == B_ && tokens.size(1) == T_)
      << "model built for micro-batches of (" << B_ << ", " << T_ << "), got tokens "
      << tokens.str();
  ops::embedding_forward(residual_[0], tokens, wte_, wpe_.defined() ? &wpe_ : nullptr);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    BlockCache& cache = caches_[recompute_full_ ? 0 : i];
    blocks_[i].forward(residual_[i], residual_[i + 1], cache, B_, T_);
  }
  const float eps = static_cast<float>(config_.norm_eps);
  if (final_norm_.b.defined()) {
    ops::layernorm_forward(final_ln_, final_mean_, final_rstd_, residual_.back(), final_norm_.w,
                           final_norm_.b, eps);
  } else {
    ops::rmsnorm_forward(final_ln_, final_rstd_, residual_.back(), final_norm_.w, eps);
  }
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

float Transformer::forward_backward(const Tensor& tokens, const Tensor& targets,
                                    float grad_scale) {
  forward_blocks(tokens);
  const int64_t N = B_ * T_;
  const Tensor targets_flat = targets.reshape({N});
  // Head: loss and its gradient in one pass; dloss per position = grad_scale / N.
  ops::classifier_forward_backward(losses_, &d_final_, &head_grad(), final_ln_, head_weight(),
                                   targets_flat, grad_scale / static_cast<float>(N), head_workspace_);
  dx_.fill_zero();
  if (final_norm_.b.defined()) {
    ops::layernorm_backward(dx_, final_norm_.dw, final_norm_.db, d_final_, residual_.back(),
                            final_norm_.w, final_mean_, final_rstd_);
  } else {
    ops::rmsnorm_backward(dx_, final_norm_.dw, d_final_, residual_.back(), final_norm_.w,
                          final_rstd_);
  }
  if (grad_ready_) grad_ready_(final_norm_offset_);  // the final norm and an untied head
  for (size_t i = blocks_.size(); i-- > 0;) {
    BlockCache& cache = caches_[recompute_full_ ? 0 : i];
    if (recompute_full_) {
      // Rebuild this block's activations from its saved input; x_out is scratch here (d_final_
      // is free once the head's backward is done).
      blocks_[i].forward(residual_[i], d_final_, cache, B_, T_);
    }
    blocks_[i].backward(dx_, residual_[i], cache, scratch_, B_, T_);
    if (grad_ready_) grad_ready_(block_offsets_[i]);
  }
  ops::embedding_backward(dwte_, dwpe_.defined() ? &dwpe_ : nullptr, dx_, tokens);
  if (grad_ready_) grad_ready_(0);  // the embeddings (a tied head's gradient is among them)
  return mean_of(losses_);
}

float Transformer::forward_loss(const Tensor& tokens, const Tensor& targets) {
  forward_blocks(tokens);
  ops::classifier_forward_backward(losses_, nullptr, nullptr, final_ln_, head_weight(),
                                   targets.reshape({B_ * T_}), 0.0f, head_workspace_);
  return mean_of(losses_);
}

std::vector<float> Transformer::logits_at(const Tensor& tokens, int64_t position) {
  TESSEL_CHECK(position >= 0 && position < T_) << "position " << position << " outside [0, " << T_ << ")";
  forward_blocks(tokens);
  const int64_t C = config_.d_model, V = config_.vocab_size;
  const Tensor row = final_ln_.view(position * C, {1, C});
  Tensor out = Tensor::empty({1, V}, DType::F32);
  ops::matmul_forward(out, row, head_weight(), nullptr, ops::WeightLayout::kOutIn);
  return std::vector<float>(out.data<float>(), out.data<float>() + V);
}

int64_t Transformer::num_parameters() const {
  int64_t n = 0;
  for (const ParamEntry& e : store_.entries()) n += e.numel;
  return n;
}

double Transformer::flops_per_token() const {
  return 6.0 * static_cast<double>(num_parameters()) +
         6.0 * static_cast<double>(config_.layers * T_ * config_.d_model);
}

}  // namespace tessel
